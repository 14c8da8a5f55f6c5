package io.sluice.bench;

import io.sluice.bench.BenchSupport.Drain;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.Faults;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.Plot;
import io.sluice.local.LocalFlink;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.generator.GeneratorConfig;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.jobs.subscriptions.SubscriptionDelta;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import io.sluice.jobs.subscriptions.SubscriptionTable;
import io.sluice.udfs.ShardOf;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static io.sluice.bench.BenchSupport.awaitWithProgress;
import static io.sluice.bench.BenchSupport.check;
import static io.sluice.bench.BenchSupport.drain;
import static io.sluice.bench.BenchSupport.fmt;
import static io.sluice.bench.BenchSupport.percentile;
import static io.sluice.bench.BenchSupport.q;

/**
 * The subscription job's benchmark, five phases on one embedded stack, after a warm-up: {@code bench.warm-up-events}
 * distinct updates drained by the job, and (for the phases that use them) written by the ceiling's writers and drained by
 * the tuned Flink SQL pipeline, unmeasured, twice (see {@link #warmUp}), so the JIT has compiled every compared pipeline's hot
 * paths before any is timed:
 * <ol>
 * <li>distinct: pre-fill {@code bench.distinct-events} updates spread uniformly over 10M subscriptions
 *     (nearly every update a distinct row, so coalescing cannot help), then the job drains them;</li>
 * <li>ceiling: the same updates written straight to the shards with the sink's statement and batch size over
 *     {@code shards.max-connections} connections per shard, no Kafka and no Flink: what Postgres on this machine can take;</li>
 * <li>skewed: {@code bench.skewed-events} Zipf-skewed updates with hot-key bursts, drained by the job
 *     and by the pipeline a Flink user writes first (Flink SQL, Kafka avro-confluent table,
 *     {@code INSERT INTO} a {@code 'connector' = 'jdbc'} upsert table per shard);</li>
 * <li>sustained: the generator at {@code bench.sustained-rate}/s for {@code bench.sustained-seconds}
 *     with the job running; time lag (now − newest committed {@code sent_at}, per shard, sampled every
 *     100 ms from {@code sluice_progress}) and checkpoint durations (REST);</li>
 * <li>outage: the same rate, with shard 0's {@code subscriptions} table locked (ACCESS EXCLUSIVE) for
 *     {@code bench.outage-seconds} from 10 s in: the healthy shard's time lag during the lock, how long
 *     shard 0 takes after the release to be under 2 s of time lag again, and the most rows the sink held
 *     for shard 0 ({@code shard.0.pendingRows}, summed over subtasks).</li>
 * </ol>
 * Drain rates use the job's task time from the REST API (first task start to last task end), the same
 * for both pipelines; the distinct drain is also timed to its last commit, as the ceiling is ({@link SluiceDrain}). Rows
 * written are Postgres' own counts ({@code pg_stat_user_tables}).
 */
final class SubscriptionBench implements Bench.Scenario {
    private static final long EPOCH = 1_700_000_000_000L;

    private final int distinctEvents;
    private final int skewedEvents;
    private final int sustainedRate;
    private final int sustainedSeconds;
    private final int parallelism;
    private final int outageSeconds;
    private final List<String> phases;
    private final boolean keyBy;
    private final int warmUpEvents;
    /**
     * {@code bench.runs}: every compared figure (Sluice's drains, the ceiling, both Flink SQL pipelines) is the best of this many runs, in
     * turns: on a shared 2-core machine one run of the ceiling varied from 57,000 to 108,000 updates/s between neighbouring
     * runs, and the tuned SQL pipeline's busiest thread used 1.8 CPU-s in one run and 4.9 in another for the same work.
     */
    private final int runs;

    SubscriptionBench(RawConfig raw) {
        distinctEvents = raw.integer("bench.distinct-events", 600_000, 1_000, 50_000_000);
        skewedEvents = raw.integer("bench.skewed-events", 400_000, 1_000, 50_000_000);
        sustainedRate = raw.integer("bench.sustained-rate", 15_000, 100, 1_000_000);
        sustainedSeconds = raw.integer("bench.sustained-seconds", 30, 5, 3600);
        parallelism = raw.integer("bench.parallelism", 2, 1, 64);
        outageSeconds = raw.integer("bench.outage-seconds", 30, 1, 3600);
        keyBy = raw.bool("bench.key-by", false);
        warmUpEvents = raw.integer("bench.warm-up-events", 200_000, 0, 50_000_000);
        runs = raw.integer("bench.runs", 2, 1, 5);
        phases = raw.list("bench.phases").isEmpty() ? List.of("distinct", "skewed", "sustained", "outage") : raw.list("bench.phases");
    }

    private Map<String, String> distinct(int count) {
        return Map.of("generator.count", String.valueOf(count), "generator.update-fraction", "1", "generator.apps", "1000",
                "generator.subscriptions-per-app", "10000", "generator.zipf-exponent", "0", "subscriptions.parallelism", String.valueOf(parallelism),
                "subscriptions.key-by", String.valueOf(keyBy));
    }

    /** The drains' rates for the run's plot, in the order they ran. */
    private final List<Plot.Bar> bars = new ArrayList<>();

    @Override
    public String run(EmbeddedStack stack, LocalFlink flink) throws Exception {
        FlinkRest rest = new FlinkRest(flink.restAddress());
        Map<String, String> result = new LinkedHashMap<>();
        bars.clear();
        warmUp(stack, flink, rest);
        if (phases.contains("distinct")) {
            distinctPhase(stack, flink, rest, result);
        }
        if (phases.contains("skewed")) {
            skewedPhase(stack, flink, rest, result);
        }
        if (phases.contains("sustained")) {
            Sustained st = sustained(stack, flink, rest);
            result.put("sustained_rate", String.valueOf(sustainedRate));
            result.put("p99_time_lag_ms", String.valueOf(st.p99LagMs));
            result.put("checkpoint_ms_p50", String.valueOf(st.checkpointP50));
            result.put("checkpoint_ms_p99", String.valueOf(st.checkpointP99));
        }
        if (phases.contains("outage")) {
            outage(stack, rest, flink, result);
        }
        result.put("parallelism", String.valueOf(parallelism));
        result.put("key_by", keyBy ? "1" : "0");
        if (!bars.isEmpty()) {
            BenchSupport.plot("subscriptions", "drains, updates/s (distinct rows, then hot keys)", bars);
        }
        StringBuilder b = new StringBuilder();
        result.forEach((k, v) -> b.append(b.length() == 0 ? "" : " ").append(k).append('=').append(v));
        return b.toString();
    }

    /**
     * Drains {@code bench.warm-up-events} distinct updates through every pipeline the selected phases compare, unmeasured, in
     * two rounds: a drain of a few hundred thousand rows is short enough that compiling its code would otherwise be a large
     * part of it (the JIT's threads used about a fifth of the machine in a cold distinct drain), and whichever pipeline ran
     * first would pay most. The second round runs each pipeline again as a new job (new tables, new connections) on the same
     * topic: what a job does only at its start (its decoder's first record, its first cache misses) ran before the JIT
     * profiled it in the first round, so the first compiled code has traps there, and without the second round the measured
     * job would hit them, deoptimise its decoding and compile it again while it is timed.
     */
    private void warmUp(EmbeddedStack stack, LocalFlink flink, FlinkRest rest) throws Exception {
        if (warmUpEvents == 0 || !(phases.contains("distinct") || phases.contains("skewed"))) {
            return;
        }
        var first = stack.namespace("bench-warm-up-", 4, distinct(warmUpEvents));
        Oracle oracle = prefill("0/5 warm-up", first);
        long updates = oracle.good(first.config().kafka().subscriptionUpdatesTopic());
        for (int round = 1; round <= 2; round++) {
            String phase = "0/5 warm-up, round " + round + " of 2";
            var ns = round == 1 ? first : stack.namespace("bench-warm-up-" + round + "-", 4, sameTopic(first, distinct(warmUpEvents)));
            try (StackProbe probe = new StackProbe(ns.config())) {
                drainSluice(phase, flink, rest, ns.config(), probe, updates);
            }
            BenchSupport.settle(ns.config());
            if (phases.contains("distinct")) {
                var ceilingNs = stack.namespace("bench-warm-up-ceiling-" + round + "-", 4, distinct(warmUpEvents));
                pgCeiling(phase, ceilingNs.config(), ceilingNs.generator(), ceilingNs.schemaIds(), updates);
                BenchSupport.settle(ceilingNs.config());
            }
            if (phases.contains("skewed")) {
                var sqlNs = stack.namespace("bench-warm-up-sql-" + round + "-", 4, Map.of());
                drainFlinkSql(phase, flink, rest, first.config(), sqlNs.config(), updates, true);
                BenchSupport.settle(sqlNs.config());
            }
        }
        BenchSupport.awaitJitIdle("0/5 warm-up");
    }

    /** Phases 1 and 2: distinct rows, and the Postgres ceiling for the same rows. */
    private void distinctPhase(EmbeddedStack stack, LocalFlink flink, FlinkRest rest, Map<String, String> result) throws Exception {
        var first = stack.namespace("bench-distinct-", 4, distinct(distinctEvents));
        Oracle oracle = prefill("1/5 distinct", first);
        long distinctUpdates = oracle.good(first.config().kafka().subscriptionUpdatesTopic());
        Drain d = null; // the better run by task time
        Drain toCommit = null; // the better run by the time to its last commit (perhaps the other run)
        long bestRows = 0;
        double ceiling = 0;
        for (int run = 1; run <= runs; run++) { // Sluice and the ceiling in turns, so a slow stretch of the machine hits both
            String phase = "1/5 distinct, run " + run + " of " + runs;
            var ns = run == 1 ? first : stack.namespace("bench-distinct-" + run + "-", 4, sameTopic(first, distinct(distinctEvents)));
            SluiceDrain r;
            long actualRows;
            Map<String, Double> cpu;
            try (StackProbe probe = new StackProbe(ns.config()); CpuProfile profile = new CpuProfile(stack)) {
                r = drainSluice(phase, flink, rest, ns.config(), probe, distinctUpdates);
                cpu = profile.stop();
                System.out.printf(Locale.ROOT, "[%s] busiest threads: %s | other: %s%n", phase, profile.top("task", 4), profile.top("other", 6));
                actualRows = rowCount(probe);
            }
            long rows = rowsWritten(ns.config());
            System.out.printf(Locale.ROOT, "[%s] CPU by thread group, from job submission to its end: %s%n", phase, CpuProfile.perThousand(cpu, rows));
            long transactions = BenchSupport.transactions(ns.config());
            System.out.printf(Locale.ROOT, "[%s] %,d transactions on the shards, %.0f rows each; %s%n", phase, transactions, (double) rows / transactions,
                    tableSize(ns.config()));
            long expectedRows = oracle.subscriptions().size();
            check(actualRows == expectedRows, "distinct run " + run + ": " + actualRows + " rows in the shards, the oracle has " + expectedRows);
            System.out.printf(Locale.ROOT, "[%s] %,d rows written by Postgres' count (%,.0f rows/s); %,d rows in the shards = oracle%n",
                    phase, rows, rows / r.taskTime().seconds(), actualRows);
            if (d == null || r.taskTime().perSecond() > d.perSecond()) {
                d = r.taskTime();
                bestRows = rows;
            }
            if (toCommit == null || r.toLastCommit().perSecond() > toCommit.perSecond()) {
                toCommit = r.toLastCommit();
            }
            BenchSupport.settle(ns.config());

            // 2: the Postgres ceiling for the same rows, into empty tables
            var ceilingNs = stack.namespace("bench-ceiling-" + run + "-", 4, distinct(distinctEvents));
            try (CpuProfile profile = new CpuProfile(stack)) {
                ceiling = Math.max(ceiling, pgCeiling("2/5 ceiling, run " + run + " of " + runs, ceilingNs.config(), ceilingNs.generator(),
                        ceilingNs.schemaIds(), distinctUpdates));
                System.out.printf(Locale.ROOT, "[2/5 ceiling] CPU by thread group, generating the rows included: %s; %s%n",
                        CpuProfile.perThousand(profile.stop(), rowsWritten(ceilingNs.config())), tableSize(ceilingNs.config()));
            }
            BenchSupport.settle(ceilingNs.config());
        }
        result.put("events_per_s", fmt(d.perSecond()));
        result.put("to_last_commit_events_per_s", fmt(toCommit.perSecond()));
        result.put("rows_written_per_s", fmt(bestRows / d.seconds()));
        result.put("pg_ceiling_events_per_s", fmt(ceiling));
        result.put("of_pg_ceiling", String.format(Locale.ROOT, "%.2f", toCommit.perSecond() / ceiling));
        bars.add(new Plot.Bar("distinct rows: Sluice (to its last commit)", toCommit.perSecond(), true));
        bars.add(new Plot.Bar("distinct rows: Postgres ceiling (the sink's statement, no Kafka, no Flink)", ceiling, false));
    }

    /** Phase 3: skewed updates, Sluice against Flink SQL + JDBC connector on the same topic. */
    private void skewedPhase(EmbeddedStack stack, LocalFlink flink, FlinkRest rest, Map<String, String> result) throws Exception {
        var skewed = stack.namespace("bench-skewed-", 4, Map.of("generator.count", String.valueOf(skewedEvents),
                "generator.update-fraction", "1", "generator.hot-key", "true", "subscriptions.parallelism", String.valueOf(parallelism),
                "subscriptions.key-by", String.valueOf(keyBy)));
        Oracle skewedOracle = prefill("3/5 skewed", skewed);
        long skewedUpdates = skewedOracle.good(skewed.config().kafka().subscriptionUpdatesTopic());
        Drain s = null;
        Drain tuned = null;
        Drain sql = null;
        long skewedRows = 0;
        long[] sqlRows = new long[2];
        for (int run = 1; run <= runs; run++) { // Sluice and both SQL pipelines in turns
            var ns = run == 1 ? skewed : stack.namespace("bench-skewed-" + run + "-", 4, sameTopic(skewed, Map.of("subscriptions.parallelism",
                    String.valueOf(parallelism), "subscriptions.key-by", String.valueOf(keyBy))));
            Drain r;
            try (StackProbe probe = new StackProbe(ns.config()); CpuProfile profile = new CpuProfile(stack)) {
                r = drainSluice("3/5 skewed, run " + run + " of " + runs, flink, rest, ns.config(), probe, skewedUpdates).taskTime();
                printCpu("Sluice", profile, skewedUpdates);
                check(rowCount(probe) == skewedOracle.subscriptions().size(), "skewed run " + run + ": row count differs from the oracle");
            }
            long rows = rowsWritten(ns.config());
            if (s == null || r.perSecond() > s.perSecond()) {
                s = r;
                skewedRows = rows;
            }
            BenchSupport.settle(ns.config()); // the SQL pipelines read its topic, not its tables
            long[] rowsOfRun = new long[2];
            Drain q = skewedSql(stack, flink, rest, skewed.config(), skewedUpdates, false, rowsOfRun);
            if (sql == null || q.perSecond() > sql.perSecond()) {
                sql = q;
                sqlRows[0] = rowsOfRun[0];
            }
            Drain t = skewedSql(stack, flink, rest, skewed.config(), skewedUpdates, true, rowsOfRun);
            if (tuned == null || t.perSecond() > tuned.perSecond()) {
                tuned = t;
                sqlRows[1] = rowsOfRun[1];
            }
        }
        System.out.printf(Locale.ROOT, "[3/5 skewed] row writes for %,d updates: Sluice %,d (coalescing %.1fx), Flink SQL JDBC %,d, tuned %,d%n",
                skewedUpdates, skewedRows, (double) skewedUpdates / skewedRows, sqlRows[0], sqlRows[1]);
        result.put("skewed_events_per_s", fmt(s.perSecond()));
        result.put("coalescing_ratio", String.format(Locale.ROOT, "%.1f", (double) skewedUpdates / skewedRows));
        result.put("flink_sql_jdbc_events_per_s", fmt(sql.perSecond()));
        result.put("vs_flink_sql_jdbc", String.format(Locale.ROOT, "%.2f", s.perSecond() / sql.perSecond()));
        result.put("flink_sql_jdbc_tuned_events_per_s", fmt(tuned.perSecond()));
        result.put("vs_flink_sql_jdbc_tuned", String.format(Locale.ROOT, "%.2f", s.perSecond() / tuned.perSecond()));
        bars.add(new Plot.Bar("hot keys: Sluice", s.perSecond(), true));
        bars.add(new Plot.Bar("hot keys: Flink SQL + JDBC connector", sql.perSecond(), false));
        bars.add(new Plot.Bar("hot keys: Flink SQL + JDBC connector, tuned", tuned.perSecond(), false));

    }

    /** Settings that read {@code from}'s subscription-updates topic (already filled) into a namespace of their own. */
    private static Map<String, String> sameTopic(EmbeddedStack.Namespace from, Map<String, String> settings) {
        Map<String, String> out = new LinkedHashMap<>(settings);
        out.put("kafka.topics.subscription-updates", from.config().kafka().subscriptionUpdatesTopic());
        return out;
    }

    /** One Flink SQL drain of the skewed topic into tables of its own, with its CPU; its row writes go to {@code rows[tuned ? 1 : 0]}. */
    private Drain skewedSql(EmbeddedStack stack, LocalFlink flink, FlinkRest rest, SluiceConfig source, long updates, boolean tuned, long[] rows)
            throws Exception {
        var ns = stack.namespace((tuned ? "bench-sql-tuned-" : "bench-sql-") + System.nanoTime() + "-", 4, Map.of());
        Drain d;
        try (CpuProfile profile = new CpuProfile(stack)) {
            d = drainFlinkSql("3/5 skewed", flink, rest, source, ns.config(), updates, tuned);
            printCpu("Flink SQL + JDBC connector (" + (tuned ? "tuned" : "defaults") + ")", profile, updates);
        }
        rows[tuned ? 1 : 0] = rowsWritten(ns.config());
        BenchSupport.settle(ns.config());
        return d;
    }

    private static void printCpu(String who, CpuProfile profile, long updates) {
        System.out.printf(Locale.ROOT, "[3/5 skewed] %s, CPU by thread group: %s; busiest task threads: %s%n", who,
                CpuProfile.perThousand(profile.stop(), updates, "updates"), profile.top("task", 4));
    }

    private Oracle prefill(String phase, EmbeddedStack.Namespace ns) throws Exception {
        long t0 = System.nanoTime();
        try (LoadGenerator g = new LoadGenerator(ns.config(), ns.generator(), ns.schemaIds(), 0, EPOCH, false).start()) {
            Oracle o = g.awaitDone().oracle();
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf(Locale.ROOT, "[%s] pre-filled %,d updates in %.1f s%n", phase, g.acked(), s);
            return o;
        }
    }

    private SluiceDrain drainSluice(String phase, LocalFlink flink, FlinkRest rest, SluiceConfig config, StackProbe probe, long events) throws Exception {
        StreamExecutionEnvironment env = flink.environment();
        SubscriptionJob.defineWorkflow(env, config, SubscriptionJob.source(config, true), SubscriptionJob.sink(config), KafkaIo.deadLetterSink(config));
        JobClient job = env.executeAsync("bench-subscriptions-" + phase.replaceAll("\\W+", "-"));
        awaitWithProgress(phase, job, () -> committed(probe));
        String jobId = job.getJobID().toString();
        long[] window = rest.activeWindow(jobId);
        Drain byTaskTime = drain(phase, "Sluice", rest, jobId, events, window);
        long start = window[0];
        // the sink writes sluice_progress last in each transaction, stamped clock_timestamp(): its newest stamp is the last commit
        long lastCommit = BenchSupport.overShards(config, Math::max,
                "SELECT coalesce((extract(epoch FROM max(committed_at)) * 1000)::bigint, 0) FROM sluice_progress WHERE job = ?", SubscriptionJob.NAME);
        check(lastCommit > start && lastCommit <= window[1], phase + ": the last commit (" + lastCommit + ") is not between the job's start ("
                + start + ") and end (" + window[1] + "), epoch ms");
        Drain toLastCommit = Drain.of(events, (lastCommit - start) / 1000.0);
        System.out.printf(Locale.ROOT, "[%s] its last transaction committed %.2f s after the first task started (%,.0f records/s); the job ended %.2f s "
                + "later, after its final checkpoint%n", phase, toLastCommit.seconds(), toLastCommit.perSecond(), byTaskTime.seconds() - toLastCommit.seconds());
        return new SluiceDrain(byTaskTime, toLastCommit);
    }

    /**
     * A drain of the job timed two ways from its first task's start: to its end ({@code taskTime}, as the Flink SQL pipelines
     * are timed), and to the moment its last row was committed ({@code toLastCommit}, as the ceiling is timed). The difference
     * is the bounded job's wait for its final checkpoint (up to the 1 s interval), which a streaming job never has.
     */
    private record SluiceDrain(Drain taskTime, Drain toLastCommit) {
    }

    /**
     * Flink SQL's obvious version: Kafka table → {@code INSERT INTO} one JDBC upsert table per shard, in
     * one job. {@code tuned}: with the connector's defaults (100-row batches, 1 s) as a user writes it
     * first, or tuned like Sluice's sink (2,000-row batches, 200 ms, {@code reWriteBatchedInserts}).
     * It is not even correct: it overwrites {@code properties} with the latest {@code set} (no merge, no
     * {@code unset}) and has no version guard, so it bounds from above what the naive pipeline costs.
     */
    private Drain drainFlinkSql(String phase, LocalFlink flink, FlinkRest rest, SluiceConfig source, SluiceConfig target, long events, boolean tuned) throws Exception {
        StreamExecutionEnvironment env = flink.environment();
        env.setParallelism(parallelism);
        StreamTableEnvironment t = StreamTableEnvironment.create(env);
        t.createTemporarySystemFunction("SHARD_OF", ShardOf.class);
        t.getConfig().set("table.exec.sink.upsert-materialize", "NONE");
        t.executeSql("""
                CREATE TABLE updates (
                  app_id STRING NOT NULL,
                  subscription_id STRING NOT NULL,
                  `set` MAP<STRING NOT NULL, STRING NOT NULL> NOT NULL,
                  `unset` ARRAY<STRING NOT NULL> NOT NULL,
                  sent_at TIMESTAMP(3) NOT NULL,
                  `offset` BIGINT METADATA VIRTUAL
                ) WITH (
                  'connector' = 'kafka',
                  'topic' = '%s',
                  'properties.bootstrap.servers' = '%s',
                  'properties.group.id' = 'bench-flink-sql-%s-%s',
                  'scan.startup.mode' = 'earliest-offset',
                  'scan.bounded.mode' = 'latest-offset',
                  'format' = 'avro-confluent',
                  'avro-confluent.url' = '%s'
                )""".formatted(q(source.kafka().subscriptionUpdatesTopic()), q(source.kafka().bootstrap()), phase.replaceAll("\\W+", "-"), tuned ? "tuned" : "defaults",
                        q(source.registry().url())));
        StatementSet inserts = t.createStatementSet();
        for (SluiceConfig.Shard shard : target.shards().list()) {
            t.executeSql("""
                    CREATE TABLE subscriptions_%d (
                      app_id STRING, subscription_id STRING, properties STRING, updated_at TIMESTAMP(3), version BIGINT,
                      PRIMARY KEY (app_id, subscription_id) NOT ENFORCED
                    ) WITH (
                      'connector' = 'jdbc',
                      'url' = '%s',
                      'table-name' = 'subscriptions',
                      'username' = '%s',
                      'password' = '%s'%s
                    )""".formatted(shard.index(), q(shard.jdbcUrl() + "?stringtype=unspecified" + (tuned ? "&reWriteBatchedInserts=true" : "")),
                    q(shard.user()), q(shard.password() == null ? "" : shard.password()),
                    tuned ? ",\n  'sink.buffer-flush.max-rows' = '2000',\n  'sink.buffer-flush.interval' = '200ms'" : ""));
            inserts.addInsertSql("""
                    INSERT INTO subscriptions_%d
                    SELECT app_id, subscription_id, JSON_STRING(`set`), sent_at, `offset` FROM updates
                    WHERE SHARD_OF(app_id, %d, %d) = %d""".formatted(shard.index(), source.routing().buckets(), target.shards().list().size(), shard.index()));
        }
        TableResult r = inserts.execute();
        JobClient job = r.getJobClient().orElseThrow();
        awaitWithProgress(phase, job, () -> -1);
        return drain(phase, "Flink SQL + JDBC connector" + (tuned ? " (tuned)" : " (defaults)"), rest, job.getJobID().toString(), events);
    }

    /**
     * The same updates, written by the sink's statement over {@code shards.max-connections} connections per shard (1), no Kafka,
     * no Flink. The sink at parallelism 2 has 2 per shard (one per subtask); on this 2-core machine Postgres took 12–22% fewer
     * rows/s over 2 per shard than over 1 (docs/benchmarks.md), so the ceiling keeps the faster one.
     */
    private double pgCeiling(String phase, SluiceConfig config, GeneratorConfig generator, Map<String, Integer> schemaIds, long updates) throws Exception {
        Oracle o = new Oracle(false, true);
        RecordSequence seq = new RecordSequence(config, generator, schemaIds, EPOCH, o);
        while (o.updates().size() < updates) {
            seq.next();
        }
        int shards = config.shards().list().size();
        int perShard = config.shards().maxConnections();
        int batchRows = config.subscriptions().flushMaxRows();
        List<List<List<SubscriptionDelta>>> work = new ArrayList<>(); // per writer: its batches
        List<Map<String, SubscriptionDelta>> open = new ArrayList<>();
        for (int i = 0; i < shards * perShard; i++) {
            work.add(new ArrayList<>());
            open.add(new LinkedHashMap<>());
        }
        long offset = 0;
        for (SubscriptionUpdate u : o.updates()) {
            SubscriptionDelta delta = SubscriptionDelta.of(u, 0, 0, offset++);
            int writer = config.router().shardOf(u.appId()) * perShard + Math.floorMod(delta.key().hashCode(), perShard);
            Map<String, SubscriptionDelta> batch = open.get(writer);
            SubscriptionDelta before = batch.get(delta.key());
            if (before == null) {
                batch.put(delta.key(), delta);
            } else {
                before.merge(delta);
            }
            if (batch.size() >= batchRows) {
                work.get(writer).add(new ArrayList<>(batch.values()));
                batch.clear();
            }
        }
        for (int i = 0; i < open.size(); i++) {
            if (!open.get(i).isEmpty()) {
                work.get(i).add(new ArrayList<>(open.get(i).values()));
            }
        }
        SubscriptionTable table = new SubscriptionTable(config.kafka().subscriptionUpdatesTopic());
        ExecutorService pool = Executors.newFixedThreadPool(work.size());
        long t0 = System.nanoTime();
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < work.size(); i++) {
                SluiceConfig.Shard shard = config.shards().list().get(i / perShard);
                List<List<SubscriptionDelta>> batches = work.get(i);
                futures.add(pool.submit(() -> {
                    try (Connection c = shard.connect()) {
                        c.setAutoCommit(false);
                        for (List<SubscriptionDelta> b : batches) {
                            table.write(c, b);
                            c.commit();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdown();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        double rate = o.updates().size() / seconds;
        System.out.printf(Locale.ROOT, "[%s] the same %,d updates straight into the shards (%d connections each, %,d-row batches): %.1f s, %,.0f updates/s%n",
                phase, o.updates().size(), perShard, batchRows, seconds, rate);
        return rate;
    }

    private record Sustained(long p99LagMs, long checkpointP50, long checkpointP99) {
    }

    private Sustained sustained(EmbeddedStack stack, LocalFlink flink, FlinkRest rest) throws Exception {
        Map<String, String> settings = new java.util.HashMap<>(distinct(sustainedRate * sustainedSeconds));
        settings.put("generator.rate", String.valueOf(sustainedRate)); // sent_at advances at the sending rate
        var ns = stack.namespace("bench-sustained-", 4, settings);
        SluiceConfig config = ns.config();
        StreamExecutionEnvironment env = flink.environment();
        SubscriptionJob.defineWorkflow(env, config, SubscriptionJob.source(config, false), SubscriptionJob.sink(config), KafkaIo.deadLetterSink(config));
        JobClient job = env.executeAsync("bench-subscriptions-sustained");
        BenchSupport.Sustained run;
        try {
            run = BenchSupport.sustain("4/5 sustained", rest, job, ns, SubscriptionJob.NAME, config.kafka().subscriptionUpdatesTopic(), sustainedRate, 5_000, () -> "");
        } finally {
            job.cancel().get();
        }
        long[] lag = run.lags();
        long[] cp = run.checkpoints();
        Sustained s = new Sustained(percentile(lag, 0.99), percentile(cp, 0.5), percentile(cp, 0.99));
        System.out.printf(Locale.ROOT, "[4/5 sustained] %,d updates/s for %d s: time lag p50 %d ms, p99 %d ms, max %d ms (%,d samples); "
                        + "checkpoints p50 %d ms, p99 %d ms (%d checkpoints)%n", sustainedRate, sustainedSeconds, percentile(lag, 0.5), s.p99LagMs,
                lag.length == 0 ? 0 : lag[lag.length - 1], lag.length, s.checkpointP50, s.checkpointP99, cp.length);
        return s;
    }

    /** Phase 5: the sustained rate with shard 0 locked for {@code outageSeconds}, 10 s in; the healthy shard is 1. */
    private void outage(EmbeddedStack stack, FlinkRest rest, LocalFlink flink, Map<String, String> result) throws Exception {
        long lockAfterMs = 10_000;
        long tailMs = Math.max(20_000, outageSeconds * 1000L);
        Map<String, String> settings = new java.util.HashMap<>(distinct((int) (sustainedRate * (lockAfterMs + outageSeconds * 1000L + tailMs) / 1000)));
        settings.put("generator.rate", String.valueOf(sustainedRate));
        var ns = stack.namespace("bench-outage-", 4, settings);
        SluiceConfig config = ns.config();
        StreamExecutionEnvironment env = flink.environment();
        SubscriptionJob.defineWorkflow(env, config, SubscriptionJob.source(config, false), SubscriptionJob.sink(config), KafkaIo.deadLetterSink(config));
        JobClient job = env.executeAsync("bench-subscriptions-outage");
        String jobId = job.getJobID().toString();
        List<Long> healthyLags = new java.util.ArrayList<>();
        long[] t = new long[4]; // first sample, lock taken, lock released, shard 0 back under 2 s of time lag
        double[] pendingMax = {0};
        long[] checkpointMax = {0, 0}; // the largest checkpoint taken during the lock: bytes, ms
        long[] lastPendingRead = {0};
        try (Connection lock = Faults.lockSession(config.shards().list().get(0).connect("sluice-bench-outage"))) {
            BenchSupport.sustain("5/5 outage", rest, job, ns, SubscriptionJob.NAME, config.kafka().subscriptionUpdatesTopic(), sustainedRate, 0,
                    () -> t[1] == 0 ? ", shard 0 not locked yet" : t[2] == 0 ? String.format(Locale.ROOT, ", shard 0 locked, %,.0f rows pending for it",
                            pendingMax[0]) : t[3] == 0 ? ", shard 0 released, catching up" : ", shard 0 caught up",
                    (at, newest) -> {
                        if (t[0] == 0) {
                            t[0] = at;
                        }
                        if (t[1] == 0 && at - t[0] >= lockAfterMs) {
                            lock.createStatement().execute("LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE");
                            t[1] = System.currentTimeMillis();
                            System.out.printf(Locale.ROOT, "[5/5 outage] shard 0's subscriptions locked for %d s%n", outageSeconds);
                        } else if (t[1] > 0 && t[2] == 0) {
                            if (newest[1] > 0) {
                                healthyLags.add(at - newest[1]);
                            }
                            if (at - lastPendingRead[0] >= 500) {
                                lastPendingRead[0] = at;
                                double pending = rest.metric(jobId, "upsert into shards", "shard.0.pendingRows", "sum");
                                pendingMax[0] = Double.isNaN(pending) ? pendingMax[0] : Math.max(pendingMax[0], pending);
                                var latest = rest.get("/jobs/" + jobId + "/checkpoints").path("latest").path("completed");
                                if (latest.path("trigger_timestamp").asLong() >= t[1]) {
                                    checkpointMax[0] = Math.max(checkpointMax[0], latest.path("checkpointed_size").asLong());
                                    checkpointMax[1] = Math.max(checkpointMax[1], latest.path("end_to_end_duration").asLong());
                                }
                            }
                            if (at - t[1] >= outageSeconds * 1000L) {
                                lock.commit();
                                t[2] = System.currentTimeMillis();
                                System.out.printf(Locale.ROOT, "[5/5 outage] shard 0 released%n");
                            }
                        } else if (t[2] > 0 && t[3] == 0 && newest[0] > 0 && at - newest[0] < 2_000) {
                            t[3] = at;
                        }
                    });
            lock.rollback(); // a run that ended before the release
        } finally {
            job.cancel().get();
        }
        check(t[2] > 0, "outage: the generator stopped before shard 0 was released");
        long[] healthy = healthyLags.stream().mapToLong(Long::longValue).sorted().toArray();
        double catchUp = t[3] == 0 ? -1 : (t[3] - t[2]) / 1000.0;
        System.out.printf(Locale.ROOT, "[5/5 outage] %,d updates/s, shard 0 locked %d s: shard 1's time lag during the lock p50 %d ms, p99 %d ms "
                        + "(%,d samples); shard 0 back under 2 s %s after the release; at most %,.0f rows pending for shard 0; checkpoints during the lock "
                        + "up to %,d bytes and %d ms%n", sustainedRate, outageSeconds, percentile(healthy, 0.5), percentile(healthy, 0.99), healthy.length,
                catchUp < 0 ? "never before the run ended" : catchUp + " s", pendingMax[0], checkpointMax[0], checkpointMax[1]);
        result.put("outage_healthy_p99_time_lag_ms", String.valueOf(percentile(healthy, 0.99)));
        result.put("outage_catch_up_s", String.format(Locale.ROOT, "%.1f", catchUp));
        result.put("outage_pending_rows_max", String.format(Locale.ROOT, "%.0f", pendingMax[0]));
        result.put("outage_checkpoint_max_bytes", String.valueOf(checkpointMax[0]));
        result.put("outage_checkpoint_max_ms", String.valueOf(checkpointMax[1]));
    }

    private static long committed(StackProbe probe) throws SQLException {
        return BenchSupport.committed(probe, SubscriptionJob.NAME);
    }

    private static long rowCount(StackProbe probe) throws SQLException {
        return probe.rowCounts().values().stream().mapToLong(t -> t.get("subscriptions")).sum();
    }

    /**
     * The larger shard's {@code subscriptions} table with its indexes against the servers' buffer cache: Postgres' cost per row, and
     * so the ceiling, depends on which is larger (docs/benchmarks.md).
     */
    private static String tableSize(SluiceConfig config) throws SQLException {
        long table = BenchSupport.overShards(config, Math::max, "SELECT pg_total_relation_size('subscriptions')");
        long buffers = BenchSupport.overShards(config, Math::max, "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'");
        return String.format(Locale.ROOT, "the larger shard's subscriptions table and indexes %,d MB, shared_buffers %,d MB", table >> 20, buffers >> 20);
    }

    private static long rowsWritten(SluiceConfig config) throws Exception {
        return BenchSupport.rowsWritten(config, "subscriptions");
    }
}
