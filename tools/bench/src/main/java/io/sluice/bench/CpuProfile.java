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
 * Grouped by what the thread does, from its name; printed as CPU-seconds per 1,000 rows.
 */
final class CpuProfile implements AutoCloseable {
    private static final long TICKS_PER_SECOND = 100; // USER_HZ on Linux
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final EmbeddedStack stack;
    /** thread id -> [name, cpu ns at start, cpu ns last seen] */
    private final Map<Long, Object[]> seen = new HashMap<>();
    /** postgres pid -> [ticks at start, ticks last seen] */
    private final Map<Long, long[]> postgres = new HashMap<>();
    private final Thread sampler;
    private volatile boolean running = true;
    /** True during the first sample: what runs then counts from its CPU time so far; whatever starts later, from 0. */
    private boolean baseline = true;
    private final long startNs = System.nanoTime();

    CpuProfile(EmbeddedStack stack) {
        this.stack = stack;
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
        for (ThreadInfo info : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (info == null) {
                continue;
            }
            long cpu = threads.getThreadCpuTime(info.getThreadId());
            if (cpu < 0) {
                continue;
            }
            Object[] entry = seen.computeIfAbsent(info.getThreadId(), id -> new Object[] {info.getThreadName(), baseline ? cpu : 0L, cpu});
            entry[2] = cpu;
        }
        for (int shard = 0; shard < stack.postgres.count(); shard++) {
            for (ProcessHandle p : Faults.postgresProcesses(stack.postgres.port(shard))) {
                long ticks = ticks(p.pid());
                if (ticks >= 0) {
                    long[] entry = postgres.computeIfAbsent(p.pid(), pid -> new long[] {baseline ? ticks : 0, ticks});
                    entry[1] = ticks;
                }
            }
        }
    }

    /** utime + stime of a process, in clock ticks; -1 when it is gone. */
    private static long ticks(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[11]) + Long.parseLong(f[12]); // fields 14 and 15 of stat(5), counted after the name
        } catch (Exception gone) {
            return -1;
        }
    }

    /** What a thread does, from its name. */
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
        if (name.contains("CompilerThread")) {
            return "jit";
        }
        if (name.startsWith("GC Thread") || name.startsWith("G1 ") || name.contains("Refine") || name.startsWith("VM Thread")) {
            return "gc_vm";
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
        StringJoiner j = new StringJoiner(", ");
        double total = 0;
        for (var e : seconds.entrySet()) {
            if (!e.getKey().equals("wall")) {
                total += e.getValue();
                j.add(e.getKey() + " " + String.format(Locale.ROOT, "%.3f", e.getValue() * 1000.0 / rows));
            }
        }
        j.add(String.format(Locale.ROOT, "total %.3f CPU-s per 1,000 rows; %.2f cores busy over %.1f s", total * 1000.0 / rows,
                total / seconds.get("wall"), seconds.get("wall")));
        return j.toString();
    }

    @Override
    public void close() {
        running = false;
        sampler.interrupt();
    }
}
