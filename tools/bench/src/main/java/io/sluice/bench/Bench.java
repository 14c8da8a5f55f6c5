package io.sluice.bench;

import io.sluice.core.config.ConfigException;
import io.sluice.core.config.RawConfig;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.local.LocalFlink;

import java.io.BufferedReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code ./sluice bench SCENARIO [--key value ...]}: runs a scenario end to end on the embedded stack
 * (in-process Kafka broker, schema registry stand-in, two Postgres servers, a MiniCluster with the
 * local stack's Flink settings) and ends with one line {@code RESULT <scenario> key=value ...}.
 * Scenarios: {@code subscriptions} ({@link SubscriptionBench}), {@code aggregation} ({@link AggregationBench}), {@code sidekiq}
 * ({@link SidekiqBench}).
 */
public final class Bench {
    private Bench() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
            System.out.println(usage());
            System.exit(args.length == 0 ? 2 : 0);
        }
        String scenario = args[0];
        String[] rest = List.of(args).subList(1, args.length).toArray(new String[0]);
        int code;
        try {
            RawConfig raw = RawConfig.fromArgs(rest, System.getenv(), Map.of());
            Scenario s = switch (scenario) {
                case "subscriptions" -> new SubscriptionBench(raw);
                case "aggregation" -> new AggregationBench(raw);
                case "sidekiq" -> new SidekiqBench(raw);
                default -> throw new ConfigException("unknown scenario '" + scenario + "'; expected one of: subscriptions, aggregation, sidekiq");
            };
            raw.rejectUnread();
            Path work = Path.of("target", "sluice-bench").toAbsolutePath();
            System.out.println("bench " + scenario + ": " + machine());
            long t0 = System.nanoTime();
            try (EmbeddedStack stack = EmbeddedStack.start(2, 0); LocalFlink flink = LocalFlink.start(work, 0, 8)) {
                System.out.printf(Locale.ROOT, "bench %s: stack up in %.1f s (Flink web UI %s)%n", scenario, (System.nanoTime() - t0) / 1e9, flink.restAddress());
                String result = s.run(stack, flink) + " " + memory(stack);
                System.out.println("RESULT " + scenario + " " + result);
                code = 0;
            }
        } catch (ConfigException e) {
            System.err.println("sluice bench: " + e.getMessage());
            code = 2;
        }
        System.exit(code);
    }

    /** One benchmark scenario; returns the {@code key=value ...} part of its RESULT line. */
    interface Scenario {
        String run(EmbeddedStack stack, LocalFlink flink) throws Exception;
    }

    static String usage() {
        return String.join("\n",
                "usage: ./sluice bench SCENARIO [--key value ...]",
                "  subscriptions   the subscription job: drain of distinct-row updates, the Postgres ceiling for the same rows,",
                "                  drain of skewed updates against Flink SQL + JDBC connector, and time lag at a sustained rate",
                "                  --bench.distinct-events N (600000) --bench.skewed-events N (400000)",
                "                  --bench.sustained-rate N (15000) --bench.sustained-seconds N (30) --bench.parallelism N (2)",
                "  aggregation     the aggregation job: drain of skewed user events against a Flink SQL window TVF + JDBC connector",
                "                  and (phase same-work) the same running results in Flink SQL (GROUP BY TUMBLE, early/late fire),",
                "                  push jobs per second, and result latency, state keys and checkpoints at a sustained rate",
                "                  --bench.drain-events N (3000000) --bench.drain-users N (200000) --bench.same-work-events N (300000)",
                "                  --bench.sustained-rate N (20000)",
                "                  --bench.sustained-seconds N (120) --bench.sustained-users N (1000000) --bench.phases drain,same-work,sustained",
                "  sidekiq         the Sidekiq bridge (needs Debian's redis-server and ruby-sidekiq): Sidekiq jobs enqueued per second,",
                "                  and the rate a real Sidekiq runs them, from the same run",
                "                  --bench.pushes N (200000) --bench.sidekiq-concurrency N (10)");
    }

    /**
     * Memory at the end of a run: the benchmark JVM's peak heap (the heap pools' peaks, summed) and its peak resident set
     * ({@code VmHWM}), and the Postgres shards' proportional set size ({@code Pss} of every server process, so shared
     * buffers count once).
     */
    static String memory(EmbeddedStack stack) {
        long heapPeak = 0;
        for (java.lang.management.MemoryPoolMXBean pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == java.lang.management.MemoryType.HEAP && pool.getPeakUsage() != null) {
                heapPeak += pool.getPeakUsage().getUsed();
            }
        }
        long postgresKb = 0;
        for (int shard = 0; shard < stack.postgres.count(); shard++) {
            for (ProcessHandle p : io.sluice.testkit.Faults.postgresProcesses(stack.postgres.port(shard))) {
                postgresKb += procKb("/proc/" + p.pid() + "/smaps_rollup", "Pss:");
            }
        }
        return String.format(Locale.ROOT, "jvm_peak_heap_mb=%d jvm_peak_rss_mb=%d postgres_pss_mb=%d", heapPeak >> 20,
                procKb("/proc/self/status", "VmHWM:") >> 10, postgresKb >> 10);
    }

    /** A {@code kB} figure from a /proc file (0 when the process is gone or the line is missing). */
    private static long procKb(String file, String label) {
        try {
            for (String line : Files.readAllLines(Path.of(file))) {
                if (line.startsWith(label)) {
                    return Long.parseLong(line.substring(label.length()).trim().split("\\s+")[0]);
                }
            }
        } catch (Exception gone) {
            // a process that ended meanwhile holds no memory
        }
        return 0;
    }

    /** Cores, memory, OS and Java, for docs/benchmarks.md next to the figures. */
    static String machine() {
        String cpu = "?";
        try (BufferedReader r = Files.newBufferedReader(Path.of("/proc/cpuinfo"))) {
            cpu = r.lines().filter(l -> l.startsWith("model name")).findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("?");
        } catch (Exception ignored) {
            // not Linux
        }
        return Runtime.getRuntime().availableProcessors() + " cores (" + cpu + "), "
                + (Runtime.getRuntime().maxMemory() >> 20) + " MB max heap, " + System.getProperty("os.name") + " " + System.getProperty("os.version")
                + ", Java " + System.getProperty("java.version");
    }
}
