package io.sluice.chaos;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code ./sluice chaos [--duration 10m] [--faults N] [--per-kind K] [--seed S] [--rate N] [--kinds a,b] [--plot FILE]}:
 * a {@link ChaosRun}, its fault table, a timeline plot and a RESULT line. Exits 0 only if nothing was lost or
 * duplicated, no row moved backwards, and the jobs recovered from every fault. Run from the repository root.
 */
public final class ChaosCommand {
    private ChaosCommand() {
    }

    static String usage() {
        return String.join("\n",
                "usage: ./sluice chaos [--duration 10m] [--faults N] [--per-kind 2] [--seed S] [--rate 1500] [--kinds K,K] [--plot FILE] [--work-dir DIR]",
                "  both jobs on a standalone cluster of a JobManager and two TaskManager processes, the embedded Kafka, registry and",
                "  two Postgres shards, a generator with malformed, out-of-order, late and hot-key records; every kind --per-kind times",
                "  (then random kinds up to --faults, if that is more), in an order --seed decides, each once the jobs recovered from",
                "  the one before. The load lasts --duration, or longer until the jobs have recovered from the last fault; every kind",
                "  must start by twice --duration. Repeats beyond every kind only as --duration allows.",
                "  Then every row, push job and dead letter is checked against the generator's oracle.",
                "  kinds: " + Fault.labels(List.of(Fault.values())),
                "  --duration  least load time, e.g. 600s or 10m (default 10m)     --rate  records per second (default 1500)",
                "  --plot      where the timeline PNG goes (default target/chaos/chaos-timeline.png)");
    }

    public static void main(String[] argv) throws Exception {
        List<String> args = new ArrayList<>(Arrays.asList(argv));
        if (args.contains("--help") || args.contains("-h")) {
            System.out.println(usage());
            return;
        }
        Duration duration = duration(option(args, "--duration", "10m"));
        int perKind = Integer.parseInt(option(args, "--per-kind", "2"));
        List<Fault> kinds = Arrays.stream(option(args, "--kinds", Fault.labels(List.of(Fault.values()))).split(",")).map(Fault::parse).toList();
        int faults = Integer.parseInt(option(args, "--faults", String.valueOf(kinds.size() * perKind)));
        long seed = Long.parseLong(option(args, "--seed", String.valueOf(System.currentTimeMillis() % 100_000)));
        int rate = Integer.parseInt(option(args, "--rate", "1500"));
        Path plot = Path.of(option(args, "--plot", "target/chaos/chaos-timeline.png"));
        Path work = Path.of(option(args, "--work-dir", "target/chaos/run")).toAbsolutePath();
        if (!args.isEmpty()) {
            System.err.println("sluice chaos: unexpected arguments " + args + "\n" + usage());
            System.exit(2);
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        ChaosRun.Outcome outcome = new ChaosRun(new ChaosRun.Options(duration, faults, perKind, seed, rate, kinds, Path.of("").toAbsolutePath(), work),
                out).run();
        if (Files.exists(outcome.plot())) {
            Files.createDirectories(plot.toAbsolutePath().getParent());
            Files.copy(outcome.plot(), plot, StandardCopyOption.REPLACE_EXISTING);
        }
        out.println();
        out.print(outcome.table());
        out.println();
        outcome.problems().forEach(p -> out.println("PROBLEM " + p));
        out.printf(Locale.ROOT, "sluice chaos: %,d records sent; lost: %d subscription rows, %d window rows, %d push jobs, %d dead letters; plot %s%n",
                outcome.sent(), outcome.lostSubscriptionRows(), outcome.lostWindowRows(), outcome.missingPushes(), outcome.missingDeadLetters(), plot);
        out.println(outcome.resultLine());
        System.exit(outcome.ok() ? 0 : 1);
    }

    static Duration duration(String s) {
        if (s.endsWith("m")) {
            return Duration.ofMinutes(Long.parseLong(s.substring(0, s.length() - 1)));
        }
        return Duration.ofSeconds(Long.parseLong(s.endsWith("s") ? s.substring(0, s.length() - 1) : s));
    }

    private static String option(List<String> args, String name, String dflt) {
        int i = args.indexOf(name);
        if (i < 0) {
            return dflt;
        }
        if (i + 1 >= args.size()) {
            throw new IllegalArgumentException(name + " needs a value");
        }
        args.remove(i);
        return args.remove(i);
    }
}
