package io.sluice.bench;

import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.Faults;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

/**
 * Where a phase's CPU time goes: every thread of the benchmark JVM (Flink's task threads, the Kafka source's
 * fetchers, the shard writers, the in-process broker, the JIT and the GC) and every Postgres server process,
 * sampled every 200 ms, so threads and backends that end during the phase still count up to their last sample.
 * Grouped by what the thread does, from its name; printed as CPU-seconds per 1,000 rows. The JIT's and the collector's
 * threads are not Java threads: they are read from {@code /proc/self/task}.
 */
final class CpuProfile implements AutoCloseable {
    private static final long TICKS_PER_SECOND = 100; // USER_HZ on Linux
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final java.util.List<ProcessHandle> postmasters = new java.util.ArrayList<>();
    /** thread id -> [name, cpu ns at start, cpu ns last seen] */
    private final Map<Long, Object[]> seen = new HashMap<>();
    /** postgres pid -> [ticks at start, ticks last seen] */
    private final Map<Long, long[]> postgres = new HashMap<>();
    /** native thread id -> its group ("" for a Java thread); and for the JIT's and the GC's: [ticks at start, ticks last seen] */
    private final Map<Long, String> nativeGroups = new HashMap<>();
    private final Map<Long, long[]> nativeTicks = new HashMap<>();
    private final Thread sampler;
    private volatile boolean running = true;
    /** True during the first sample: what runs then counts from its CPU time so far; whatever starts later, from 0. */
    private boolean baseline = true;
    private final long startNs = System.nanoTime();

    CpuProfile(EmbeddedStack stack) {
        for (int shard = 0; shard < stack.postgres.count(); shard++) {
            postmasters.add(Faults.postgresProcesses(stack.postgres.port(shard)).get(0)); // a full process scan: once, not per sample
        }
        threads.setThreadCpuTimeEnabled(true);
        sample();
        baseline = false;
        sampler = new Thread(() -> {
            while (running) {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
                sample();
            }
        }, "sluice-bench-cpu-profile");
        sampler.setDaemon(true);
        sampler.start();
    }

    private synchronized void sample() {
        // no getThreadInfo for threads already named: it stops the JVM at a safepoint, which would slow what is measured
        for (long id : threads.getAllThreadIds()) {
            long cpu = threads.getThreadCpuTime(id);
            if (cpu < 0) {
                continue;
            }
            Object[] entry = seen.get(id);
            if (entry == null) {
                ThreadInfo info = threads.getThreadInfo(id);
                if (info == null) {
                    continue;
                }
                entry = new Object[] {info.getThreadName(), baseline ? cpu : 0L, cpu};
                seen.put(id, entry);
            }
            entry[2] = cpu;
        }
        sampleNativeThreads();
        for (ProcessHandle postmaster : postmasters) { // its children are the backends and the server's own processes
            for (ProcessHandle p : (Iterable<ProcessHandle>) java.util.stream.Stream.concat(java.util.stream.Stream.of(postmaster), postmaster.children())::iterator) {
                long ticks = ticks(Path.of("/proc/" + p.pid() + "/stat"));
                if (ticks >= 0) {
                    long[] entry = postgres.computeIfAbsent(p.pid(), pid -> new long[] {baseline ? ticks : 0, ticks});
                    entry[1] = ticks;
                }
            }
        }
    }

    /**
     * The JVM's own threads that are not Java threads, so {@link ThreadMXBean} does not list them: the JIT compilers,
     * the collector's and the VM's. Read from {@code /proc/self/task}, where their names are {@link #nativeGroup}'s.
     */
    private void sampleNativeThreads() {
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                long tid = Long.parseLong(task.getFileName().toString());
                String group = nativeGroups.computeIfAbsent(tid, t -> {
                    try {
                        return nativeGroup(Files.readString(task.resolve("comm")).strip());
                    } catch (Exception gone) {
                        return "";
                    }
                });
                if (group.isEmpty()) {
                    continue;
                }
                long ticks = ticks(task.resolve("stat"));
                if (ticks >= 0) {
                    long[] entry = nativeTicks.computeIfAbsent(tid, t -> new long[] {baseline ? ticks : 0, ticks});
                    entry[1] = ticks;
                }
            }
        } catch (Exception notLinux) {
            // the groups stay 0
        }
    }

    /** {@code jit} or {@code gc_vm} for a native thread's (15-character) name, "" for a Java thread's. */
    static String nativeGroup(String comm) {
        if (comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre")) {
            return "jit";
        }
        if (comm.startsWith("GC Thread") || comm.startsWith("G1 ") || comm.startsWith("VM Thread") || comm.startsWith("VM Periodic")) {
            return "gc_vm";
        }
        return "";
    }

    /** utime + stime of a process or thread ({@code stat} under /proc), in clock ticks; -1 when it is gone. */
    private static long ticks(Path statFile) {
        try {
            String stat = Files.readString(statFile);
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[11]) + Long.parseLong(f[12]); // fields 14 and 15 of stat(5), counted after the name
        } catch (Exception gone) {
            return -1;
        }
    }

    /** What a Java thread does, from its name (the JIT's and the collector's threads are not Java threads: {@link #nativeGroup}). */
    static String group(String name) {
        if (name.startsWith("Source Data Fetcher")) {
            return "kafka_fetch";
        }
        if (name.matches(".*\\(\\d+/\\d+\\)#\\d+$")) {
            return "task";
        }
        if (name.startsWith("sluice-shard-writer")) {
            return "shard_writers";
        }
        if (name.contains("kafka") || name.contains("data-plane") || name.contains("broker") || name.contains("raft")
                || name.contains("controller") || name.contains("Log") || name.contains("Replica") || name.contains("ExpirationReaper")) {
            return "broker";
        }
        return "other";
    }

    /** Stops sampling; returns the CPU-seconds of each group (the Postgres servers as {@code postgres}) since the start. */
    synchronized Map<String, Double> stop() {
        running = false;
        sampler.interrupt();
        sample();
        Map<String, Double> seconds = new LinkedHashMap<>();
        for (String g : new String[] {"task", "kafka_fetch", "shard_writers", "broker", "postgres", "jit", "gc_vm", "other"}) {
            seconds.put(g, 0.0);
        }
        for (Object[] e : seen.values()) {
            seconds.merge(group((String) e[0]), ((long) e[2] - (long) e[1]) / 1e9, Double::sum);
        }
        for (long[] e : postgres.values()) {
            seconds.merge("postgres", (e[1] - e[0]) / (double) TICKS_PER_SECOND, Double::sum);
        }
        for (var e : nativeTicks.entrySet()) {
            seconds.merge(nativeGroups.get(e.getKey()), (e.getValue()[1] - e.getValue()[0]) / (double) TICKS_PER_SECOND, Double::sum);
        }
        seconds.put("wall", (System.nanoTime() - startNs) / 1e9);
        return seconds;
    }

    /** The {@code n} threads of {@code group} that used the most CPU, for finding what a group holds. */
    synchronized String top(String group, int n) {
        return seen.values().stream().filter(e -> group(((String) e[0])).equals(group))
                .sorted((a, b) -> Long.compare((long) b[2] - (long) b[1], (long) a[2] - (long) a[1])).limit(n)
                .map(e -> e[0] + " " + String.format(Locale.ROOT, "%.1f s", ((long) e[2] - (long) e[1]) / 1e9))
                .reduce((a, b) -> a + "; " + b).orElse("none");
    }

    /** The groups' CPU-seconds per 1,000 {@code rows}, their total, and how many cores were busy on average over the wall time. */
    static String perThousand(Map<String, Double> seconds, long rows) {
        return perThousand(seconds, rows, "rows");
    }

    /** As {@link #perThousand(Map, long)}, per 1,000 of {@code unit} (e.g. updates read, where rows written differ between pipelines). */
    static String perThousand(Map<String, Double> seconds, long rows, String unit) {
        StringJoiner j = new StringJoiner(", ");
        double total = 0;
        for (var e : seconds.entrySet()) {
            if (!e.getKey().equals("wall")) {
                total += e.getValue();
                j.add(e.getKey() + " " + String.format(Locale.ROOT, "%.3f", e.getValue() * 1000.0 / rows));
            }
        }
        j.add(String.format(Locale.ROOT, "total %.3f CPU-s per 1,000 %s; %.2f cores busy over %.1f s", total * 1000.0 / rows, unit,
                total / seconds.get("wall"), seconds.get("wall")));
        return j.toString();
    }

    @Override
    public void close() {
        running = false;
        sampler.interrupt();
    }
}
