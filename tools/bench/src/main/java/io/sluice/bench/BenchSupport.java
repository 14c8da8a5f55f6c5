package io.sluice.bench;

import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.Plot;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.generator.LoadGenerator;
import org.apache.flink.core.execution.JobClient;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** Measuring helpers every scenario uses: drain rates from task time, progress while a job runs, percentiles, result checks. */
final class BenchSupport {
    private BenchSupport() {
    }

    record Drain(double seconds, double perSecond) {
        static Drain of(long events, double seconds) {
            return new Drain(seconds, events / seconds);
        }
    }

    /** The drain rate of a finished job: {@code events} over its task time (first task start to last task end, from REST). */
    static Drain drain(String phase, String who, FlinkRest rest, String jobId, long events) throws Exception {
        return drain(phase, who, rest, jobId, events, rest.activeWindow(jobId));
    }

    /** As {@link #drain(String, String, FlinkRest, String, long)}, with the job's task time {@code w} already read ({@link FlinkRest#activeWindow}). */
    static Drain drain(String phase, String who, FlinkRest rest, String jobId, long events, long[] w) throws Exception {
        Drain d = Drain.of(events, (w[1] - w[0]) / 1000.0);
        long lastRunning = rest.lastRunning(jobId);
        System.out.printf(Locale.ROOT, "[%s] %s drained %,d records in %.1f s of task time (the last task was running after %s): %,.0f records/s%n",
                phase, who, events, d.seconds(), lastRunning == 0 ? "n/a" : String.format(Locale.ROOT, "%.1f s", (lastRunning - w[0]) / 1000.0), d.perSecond);
        return d;
    }

    /**
     * Writes the run's comparison as {@code target/sluice-bench/<scenario>.png} (Sluice's bars in colour), titled with the
     * date and this machine, and prints where.
     */
    static void plot(String scenario, String what, List<Plot.Bar> bars) throws java.io.IOException {
        java.nio.file.Path png = java.nio.file.Path.of("target", "sluice-bench", scenario + ".png").toAbsolutePath();
        Plot.bars("sluice bench " + scenario + ", " + java.time.LocalDate.now() + ", " + Bench.machine(), what, bars, png);
        System.out.println("plot: " + png);
    }

    /**
     * Drops the databases of namespaces whose phase is over, on every shard, then checkpoints each server: otherwise
     * autovacuum of the tables they filled and the flushing of their dirty buffers run during the next phase, and
     * charge Postgres work to whichever pipeline is measured then.
     */
    static void settle(io.sluice.core.config.SluiceConfig... done) throws SQLException {
        Map<String, io.sluice.core.config.SluiceConfig.Shard> servers = new LinkedHashMap<>();
        for (io.sluice.core.config.SluiceConfig config : done) {
            for (io.sluice.core.config.SluiceConfig.Shard shard : config.shards().list()) {
                String database;
                try (java.sql.Connection c = shard.connect("sluice-bench-settle"); java.sql.Statement st = c.createStatement();
                     java.sql.ResultSet r = st.executeQuery("SELECT current_database()")) {
                    r.next();
                    database = r.getString(1);
                }
                var maintenance = new io.sluice.core.config.SluiceConfig.Shard(shard.index(),
                        shard.jdbcUrl().replaceFirst("^(jdbc:postgresql://[^/]+/)[^?]*", "$1postgres"), shard.user(), shard.password(), shard.timeouts());
                servers.putIfAbsent(maintenance.jdbcUrl(), maintenance);
                try (java.sql.Connection c = maintenance.connect("sluice-bench-settle"); java.sql.Statement st = c.createStatement()) {
                    st.execute("DROP DATABASE IF EXISTS \"" + database.replace("\"", "\"\"") + "\" WITH (FORCE)");
                }
            }
        }
        for (io.sluice.core.config.SluiceConfig.Shard server : servers.values()) {
            try (java.sql.Connection c = server.connect("sluice-bench-settle"); java.sql.Statement st = c.createStatement()) {
                st.execute("CHECKPOINT");
            }
        }
    }

    /**
     * Waits, at most 30 s, until the JIT has compiled nothing for half a second: on 2 cores its compiler threads fall behind
     * during a warm-up drain and would otherwise go on compiling into the next, measured one.
     */
    static void awaitJitIdle(String phase) throws InterruptedException {
        var jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        if (jit == null || !jit.isCompilationTimeMonitoringSupported()) {
            return;
        }
        long t0 = System.nanoTime();
        long before = jit.getTotalCompilationTime();
        while (System.nanoTime() - t0 < 30_000_000_000L) {
            Thread.sleep(500);
            long now = jit.getTotalCompilationTime();
            if (now - before < 10) {
                System.out.printf(Locale.ROOT, "[%s] the JIT was idle after %.1f s%n", phase, (System.nanoTime() - t0) / 1e9);
                return;
            }
            before = now;
        }
        System.out.printf(Locale.ROOT, "[%s] the JIT was still compiling after 30 s; measuring anyway%n", phase);
    }

    interface Count {
        long get() throws Exception;
    }

    /** Waits for a bounded job to finish, printing a progress line every 5 s ({@code progress} < 0: no count). */
    static void awaitWithProgress(String phase, JobClient job, Count progress) throws Exception {
        var done = job.getJobExecutionResult();
        long t0 = System.nanoTime();
        while (!done.isDone()) {
            try {
                done.get(5, java.util.concurrent.TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                long n = progress.get();
                System.out.printf(Locale.ROOT, "[%s] ... %.0f s%s%n", phase, (System.nanoTime() - t0) / 1e9, n < 0 ? "" : String.format(Locale.ROOT, ", %,d records committed", n));
            }
        }
        done.get();
    }

    /** What a sustained run measured: time-lag samples and checkpoint durations (ms), both sorted. */
    record Sustained(long[] lags, long[] checkpoints) {
    }

    /** A figure for the progress line, read while the run goes on. */
    interface Extra {
        String get() throws Exception;
    }

    /** Sees every time-lag sample: when it was taken (epoch ms) and the newest event time committed per shard (0: none or not answering). */
    interface Sampler {
        void sample(long atMs, long[] newestPerShard) throws Exception;
    }

    /**
     * Runs the namespace's generator at {@code rate}/s (event times = wall clock) against the running
     * {@code job} until its {@code generator.count} is sent, then waits up to 60 s for every record of
     * {@code inputTopic} to be committed. Samples time lag (now − newest event time committed to each shard, from
     * {@code sluice_progress}) every 100 ms after {@code warmupMs}, and completed checkpoints from REST;
     * prints a progress line every 5 s.
     */
    static Sustained sustain(String phase, FlinkRest rest, JobClient job, EmbeddedStack.Namespace ns, String jobName, String inputTopic, int rate,
                             long warmupMs, Extra extra) throws Exception {
        return sustain(phase, rest, job, ns, jobName, inputTopic, rate, warmupMs, extra, (at, newest) -> { });
    }

    /** {@link #sustain(String, FlinkRest, JobClient, EmbeddedStack.Namespace, String, String, int, long, Extra)}, also handing every sample to {@code sampler}. */
    static Sustained sustain(String phase, FlinkRest rest, JobClient job, EmbeddedStack.Namespace ns, String jobName, String inputTopic, int rate,
                             long warmupMs, Extra extra, Sampler sampler) throws Exception {
        String jobId = job.getJobID().toString();
        List<Long> lags = new ArrayList<>();
        TreeMap<Long, Long> checkpoints = new TreeMap<>(); // by id
        try (StackProbe probe = new StackProbe(ns.config())) {
            while (!rest.get("/jobs/" + jobId).path("state").asText().equals("RUNNING")) {
                Thread.sleep(100);
            }
            Thread.sleep(2000); // tasks initialised, source assigned
            // the checkpoints taken before the load are not figures of it (nor of the first progress line)
            checkpoints.putAll(rest.completedCheckpoints(jobId));
            long beforeLoad = checkpoints.isEmpty() ? 0 : checkpoints.lastKey();
            long start = System.currentTimeMillis();
            long sent;
            try (LoadGenerator g = new LoadGenerator(ns.config(), ns.generator(), ns.schemaIds(), rate, start, false).start()) {
                long nextPrint = start + 5000;
                long nextCheckpointPoll = start;
                // what each progress line's 5 s held: a p99 is often decided by one stretch, and these say what it coincided with
                int lagsAtPrint = 0;
                long gcAtPrint = gcMillis();
                long checkpointAtPrint = beforeLoad;
                while (g.isRunning()) {
                    long now = System.currentTimeMillis();
                    if (now - start >= warmupMs) {
                        long[] perShard = probe.newestCommittedPerShard(jobName);
                        long at = System.currentTimeMillis();
                        for (long newest : perShard) {
                            if (newest > 0) {
                                lags.add(at - newest);
                            }
                        }
                        sampler.sample(at, perShard);
                    }
                    if (now >= nextCheckpointPoll) {
                        checkpoints.putAll(rest.completedCheckpoints(jobId));
                        nextCheckpointPoll = now + 2000;
                    }
                    if (now >= nextPrint) {
                        long maxLag = lags.subList(lagsAtPrint, lags.size()).stream().mapToLong(Long::longValue).max().orElse(-1);
                        long slowestCheckpoint = checkpoints.tailMap(checkpointAtPrint, false).values().stream()
                                .mapToLong(Long::longValue).max().orElse(-1);
                        long gc = gcMillis();
                        System.out.printf(Locale.ROOT, "[%s] ... %d s, %,d sent, %,d committed, time lag now %s ms (since the last line: highest time lag %s ms, "
                                        + "slowest completed checkpoint %s ms, this JVM's GC pauses %,d ms)%s%n", phase, (now - start) / 1000,
                                g.acked(), committed(probe, jobName), lags.isEmpty() ? "-" : lags.get(lags.size() - 1), maxLag < 0 ? "-" : maxLag,
                                slowestCheckpoint < 0 ? "-" : slowestCheckpoint, gc - gcAtPrint, extra.get());
                        lagsAtPrint = lags.size();
                        gcAtPrint = gc;
                        checkpointAtPrint = checkpoints.isEmpty() ? checkpointAtPrint : checkpoints.lastKey();
                        nextPrint = now + 5000;
                    }
                    Thread.sleep(100);
                }
                sent = g.awaitDone().acked(inputTopic);
            }
            checkpoints.putAll(rest.completedCheckpoints(jobId));
            checkpoints.headMap(beforeLoad, true).clear();
            long deadline = System.currentTimeMillis() + 60_000;
            while (committed(probe, jobName) < sent && System.currentTimeMillis() < deadline) {
                Thread.sleep(200);
            }
            check(committed(probe, jobName) >= sent, phase + ": only " + committed(probe, jobName) + " of " + sent + " records committed within 60 s of the end");
        }
        return new Sustained(lags.stream().mapToLong(Long::longValue).sorted().toArray(),
                checkpoints.values().stream().mapToLong(Long::longValue).sorted().toArray());
    }

    /** This JVM's GC pause time so far (ms, every collector's MXBean summed; G1's concurrent marking is not in it). */
    static long gcMillis() {
        return ManagementFactory.getGarbageCollectorMXBeans().stream()
                .mapToLong(GarbageCollectorMXBean::getCollectionTime).filter(t -> t > 0).sum();
    }

    /** Records committed so far by a job, from {@code sluice_progress} on every shard. */
    static long committed(StackProbe probe, String jobName) throws SQLException {
        return probe.jobProgress().getOrDefault(jobName, new long[2])[0];
    }

    /** Row inserts + updates Postgres itself counted on {@code table} over all shards, after its statistics settle. */
    static long rowsWritten(io.sluice.core.config.SluiceConfig config, String table) throws Exception {
        Thread.sleep(1500);
        return sumOverShards(config, "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = ?", table);
    }

    /** Transactions committed in the namespace's databases over all shards (Postgres' {@code xact_commit}, the probes' own included). */
    static long transactions(io.sluice.core.config.SluiceConfig config) throws Exception {
        return sumOverShards(config, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
    }

    /** The one number {@code sql} (with {@code params}) returns on each shard of the namespace, summed over the shards. */
    static long sumOverShards(io.sluice.core.config.SluiceConfig config, String sql, Object... params) throws SQLException {
        return overShards(config, Long::sum, sql, params);
    }

    /** The one number {@code sql} (with {@code params}) returns on each shard of the namespace, combined by {@code reduce} (from 0). */
    static long overShards(io.sluice.core.config.SluiceConfig config, java.util.function.LongBinaryOperator reduce, String sql, Object... params)
            throws SQLException {
        long sum = 0;
        for (io.sluice.core.config.SluiceConfig.Shard s : config.shards().list()) {
            try (java.sql.Connection c = s.connect(); var st = c.prepareStatement(sql)) {
                for (int i = 0; i < params.length; i++) {
                    st.setObject(i + 1, params[i]);
                }
                try (var rs = st.executeQuery()) {
                    rs.next();
                    sum = reduce.applyAsLong(sum, rs.getLong(1));
                }
            }
        }
        return sum;
    }

    /** A string literal's content for Flink SQL. */
    static String q(String s) {
        return s.replace("'", "''");
    }

    static long percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return -1;
        }
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("benchmark result is wrong: " + what);
        }
    }

    static String fmt(double v) {
        return String.valueOf(Math.round(v));
    }
}
