package io.sluice.bench;

import io.sluice.bench.BenchSupport.Drain;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.Plot;
import io.sluice.local.LocalFlink;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.jobs.aggregation.AggregationJob;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.udfs.ShardOf;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static io.sluice.bench.BenchSupport.awaitWithProgress;
import static io.sluice.bench.BenchSupport.check;
import static io.sluice.bench.BenchSupport.drain;
import static io.sluice.bench.BenchSupport.fmt;
import static io.sluice.bench.BenchSupport.percentile;
import static io.sluice.bench.BenchSupport.q;

/**
 * The aggregation job's benchmark, on one embedded stack:
 * <ol>
 * <li>drain: pre-fill {@code bench.drain-events} user events (Zipf-skewed over
 *     {@code bench.drain-users} users, 10% out of order, generator campaigns unpaced) and drain them
 *     with the job; then the same topic with the aggregation written as a Flink SQL window TVF
 *     {@code INSERT INTO} a {@code 'connector' = 'jdbc'} table per shard (final results only). Push jobs per second are the
 *     jobs committed to {@code push-queue} over the drain time.</li>
 * <li>same work: the same kind of events, {@code bench.same-work-events} of them, drained by the job and by the Flink SQL
 *     pipeline that writes running results as the job does (legacy {@code GROUP BY TUMBLE} with early and late firing).</li>
 * <li>sustained: the generator at {@code bench.sustained-rate}/s for {@code bench.sustained-seconds}
 *     over {@code bench.sustained-users} users (uniform, so ~all of them have a window in state), the
 *     job running with the local stack's 1 s exactly-once checkpoints. Result latency = now − the newest
 *     event time committed to the shards ({@code sluice_progress}, per shard, every 100 ms: the age of
 *     the freshest result a reader can see); checkpoint durations from REST; state keys = the
 *     {@code stateKeys} gauge at the end.</li>
 * </ol>
 */
final class AggregationBench implements Bench.Scenario {

    private final int drainEvents;
    private final int drainUsers;
    private final int sustainedRate;
    private final int sustainedSeconds;
    private final int sustainedUsers;
    private final int parallelism;
    private final int sameWorkEvents;
    private final List<String> phases;
    /** The drains' rates for the run's plot, in the order they ran. */
    private final List<Plot.Bar> bars = new ArrayList<>();

    AggregationBench(RawConfig raw) {
        drainEvents = raw.integer("bench.drain-events", 3_000_000, 1_000, 100_000_000);
        drainUsers = raw.integer("bench.drain-users", 200_000, 100, 100_000_000);
        sameWorkEvents = raw.integer("bench.same-work-events", 300_000, 1_000, 100_000_000);
        sustainedRate = raw.integer("bench.sustained-rate", 20_000, 100, 1_000_000);
        sustainedSeconds = raw.integer("bench.sustained-seconds", 120, 5, 3600);
        sustainedUsers = raw.integer("bench.sustained-users", 1_000_000, 100, 100_000_000);
        parallelism = raw.integer("bench.parallelism", 2, 1, 64);
        phases = raw.list("bench.phases").isEmpty() ? List.of("drain", "same-work", "sustained") : raw.list("bench.phases");
    }

    @Override
    public String run(EmbeddedStack stack, LocalFlink flink) throws Exception {
        FlinkRest rest = new FlinkRest(flink.restAddress());
        Map<String, String> result = new LinkedHashMap<>();
        bars.clear();
        if (phases.contains("drain")) {
            drainPhase(stack, flink, rest, result);
        }
        if (phases.contains("same-work")) {
            sameWorkPhase(stack, flink, rest, result);
        }
        if (!bars.isEmpty()) {
            BenchSupport.plot("aggregation", "drains, user events/s (Sluice and the Flink SQL pipeline of each phase drain the same topic)", bars);
        }
        if (phases.contains("sustained")) {
            sustainedPhase(stack, flink, rest, result);
        }
        result.put("parallelism", String.valueOf(parallelism));
        StringBuilder b = new StringBuilder();
        result.forEach((k, v) -> b.append(b.length() == 0 ? "" : " ").append(k).append('=').append(v));
        return b.toString();
    }

    private Map<String, String> settings(int count, int users, double zipf, int nominalRate) {
        Map<String, String> m = new HashMap<>();
        m.put("generator.count", String.valueOf(count));
        m.put("generator.update-fraction", "0");
        m.put("generator.apps", "100");
        m.put("generator.users", String.valueOf(users));
        m.put("generator.zipf-exponent", String.valueOf(zipf));
        m.put("generator.rate", String.valueOf(nominalRate)); // event time advances at this rate
        m.put("generator.campaign-max-per-second", "1000000");
        m.put("aggregation.parallelism", String.valueOf(parallelism));
        return m;
    }

    private void drainPhase(EmbeddedStack stack, LocalFlink flink, FlinkRest rest, Map<String, String> result) throws Exception {
        Drained sluice = prefillAndDrain("1/3 drain", "bench-agg-drain-", drainEvents, stack, flink, rest);
        result.put("events_per_s", fmt(sluice.drain().perSecond()));
        result.put("window_rows", String.valueOf(sluice.rows()));
        long jobs = StackProbe.readCommitted(sluice.config(), sluice.config().kafka().pushQueueTopic()).size();
        System.out.printf(Locale.ROOT, "[1/3 drain] %,d window rows, %,d push jobs committed%n", sluice.rows(), jobs);
        result.put("push_jobs", String.valueOf(jobs));
        result.put("push_jobs_per_s", fmt(jobs / sluice.drain().seconds()));
        result.put("row_writes", String.valueOf(sluice.rowWrites()));
        bars.add(new Plot.Bar(String.format(Locale.ROOT, "%,d events: Sluice", sluice.events()), sluice.drain().perSecond(), true));
        compare("1/3 drain", SqlPipeline.FLINK_SQL_WINDOW, sluice, stack, flink, rest, result);
    }

    /**
     * Phase 2: Sluice and the Flink SQL pipeline that does the same work, on a topic of their own ({@code bench.same-work-events},
     * fewer than the drain's: that pipeline drains at a few thousand events per second).
     */
    private void sameWorkPhase(EmbeddedStack stack, LocalFlink flink, FlinkRest rest, Map<String, String> result) throws Exception {
        Drained sluice = prefillAndDrain("2/3 same work", "bench-agg-same-work-", sameWorkEvents, stack, flink, rest);
        result.put("same_work_events", String.valueOf(sluice.events()));
        result.put("same_work_events_per_s", fmt(sluice.drain().perSecond()));
        result.put("same_work_row_writes", String.valueOf(sluice.rowWrites()));
        bars.add(new Plot.Bar(String.format(Locale.ROOT, "%,d events: Sluice", sluice.events()), sluice.drain().perSecond(), true));
        compare("2/3 same work", SqlPipeline.FLINK_SQL_SAME_WORK, sluice, stack, flink, rest, result);
    }

    /** What Sluice drained: the namespace's config, the events, the drain rate, the window rows and Postgres' count of row writes. */
    private record Drained(SluiceConfig config, long events, Drain drain, long rows, long rowWrites) {
    }

    /** Pre-fills {@code count} Zipf-skewed user events (10% out of order by up to 4 s) in a new namespace and drains them with the job. */
    private Drained prefillAndDrain(String phase, String prefix, int count, EmbeddedStack stack, LocalFlink flink, FlinkRest rest) throws Exception {
        Map<String, String> s = settings(count, drainUsers, 1.1, 20_000);
        s.put("generator.out-of-order-fraction", "0.1");
        s.put("generator.out-of-order-max", "4s");
        var ns = stack.namespace(prefix, 4, s);
        SluiceConfig config = ns.config();
        long t0 = System.nanoTime();
        long events;
        // event time advances 20,000/s and ends a minute ago: plausible for the job (aggregation.max-event-age, max-event-lead)
        long epoch = System.currentTimeMillis() - (long) count * 1000 / 20_000 - 60_000;
        try (LoadGenerator g = new LoadGenerator(config, ns.generator(), ns.schemaIds(), 0, epoch, false).start()) {
            events = g.awaitDone().oracle().good(config.kafka().userEventsTopic());
        }
        System.out.printf(Locale.ROOT, "[%s] pre-filled %,d events in %.1f s%n", phase, events, (System.nanoTime() - t0) / 1e9);
        StreamExecutionEnvironment env = flink.environment();
        AggregationJob.defineWorkflow(env, config, AggregationJob.eventSource(config, true), AggregationJob.campaignSource(config, true),
                AggregationJob.sink(config), AggregationJob.pushSink(config), KafkaIo.deadLetterSink(config));
        JobClient job = env.executeAsync("bench-aggregation-" + prefix);
        try (StackProbe probe = new StackProbe(config)) {
            awaitWithProgress(phase, job, () -> BenchSupport.committed(probe, AggregationJob.NAME));
            Drain d = drain(phase, "Sluice", rest, job.getJobID().toString(), events);
            long committed = BenchSupport.committed(probe, AggregationJob.NAME);
            check(committed == events, phase + ": " + committed + " events committed of " + events);
            return new Drained(config, events, d, windowRows(probe), BenchSupport.rowsWritten(config, "user_event_counts"));
        }
    }

    /** Drains Sluice's topic with {@code pipeline}, which must write the same window rows, and records the rates and row writes. */
    private void compare(String phase, SqlPipeline pipeline, Drained sluice, EmbeddedStack stack, LocalFlink flink, FlinkRest rest,
                         Map<String, String> result) throws Exception {
        var sqlNs = stack.namespace("bench-agg-" + pipeline.key + "-", 4, Map.of());
        Drain sql = drainFlinkSql(phase, pipeline, flink, rest, sluice.config(), sqlNs.config(), sluice.events());
        long sqlRows;
        try (StackProbe probe = new StackProbe(sqlNs.config())) {
            sqlRows = windowRows(probe);
        }
        long sqlWrites = BenchSupport.rowsWritten(sqlNs.config(), "user_event_counts");
        System.out.printf(Locale.ROOT, "[%s] row writes for %,d windows: Sluice %,d, %s %,d%n", phase, sqlRows, sluice.rowWrites(), pipeline.label,
                sqlWrites);
        check(sqlRows == sluice.rows(), pipeline.label + " wrote " + sqlRows + " window rows, Sluice " + sluice.rows());
        long sqlCounted = countedEvents(sqlNs.config());
        long sluiceCounted = countedEvents(sluice.config());
        check(sqlCounted == sluiceCounted, pipeline.label + "'s windows count " + sqlCounted + " events, Sluice's " + sluiceCounted);
        result.put(pipeline.key + "_events_per_s", fmt(sql.perSecond()));
        result.put(pipeline.key + "_row_writes", String.valueOf(sqlWrites));
        result.put("vs_" + pipeline.key, String.format(Locale.ROOT, "%.2f", sluice.drain().perSecond() / sql.perSecond()));
        bars.add(new Plot.Bar(String.format(Locale.ROOT, "%,d events: %s", sluice.events(), pipeline.label), sql.perSecond(), false));
    }

    /**
     * The Flink SQL pipelines the drain is compared with, each one {@code INSERT INTO} a {@code 'connector' = 'jdbc'} table per
     * shard, in one job.
     */
    enum SqlPipeline {
        /** A window TVF: each window written once, when the watermark passes its end (less work than Sluice does). */
        FLINK_SQL_WINDOW("flink_sql_window", "Flink SQL window TVF (final results only)") {
            @Override
            String select(long windowS, String shardFilter) {
                return """
                        SELECT app_id, user_id, name, window_start, window_end, COUNT(*), SUM(COALESCE(`value`, 0.0))
                        FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(occurred_at), INTERVAL '%d' SECOND))
                        WHERE %s
                        GROUP BY app_id, user_id, name, window_start, window_end""".formatted(windowS, shardFilter);
            }
        },
        /**
         * The same work as Sluice: a legacy {@code GROUP BY TUMBLE} with early firing at the job's emit interval (running
         * results of the windows that changed) and late firing within its allowed lateness.
         */
        FLINK_SQL_SAME_WORK("flink_sql_same_work", "Flink SQL GROUP BY TUMBLE, early/late fire (same work)") {
            @Override
            void configure(org.apache.flink.table.api.TableConfig c, SluiceConfig.Aggregation a) {
                c.set("table.exec.emit.early-fire.enabled", "true");
                c.set("table.exec.emit.early-fire.delay", a.emitIntervalMs() + " ms");
                c.set("table.exec.emit.late-fire.enabled", "true");
                c.set("table.exec.emit.late-fire.delay", a.emitIntervalMs() + " ms");
                c.set("table.exec.emit.allow-lateness", a.allowedLatenessMs() + " ms");
            }

            @Override
            String select(long windowS, String shardFilter) {
                return """
                        SELECT app_id, user_id, name, TUMBLE_START(occurred_at, INTERVAL '%1$d' SECOND), TUMBLE_END(occurred_at, INTERVAL '%1$d' SECOND),
                          COUNT(*), SUM(COALESCE(`value`, 0.0))
                        FROM events
                        WHERE %2$s
                        GROUP BY app_id, user_id, name, TUMBLE(occurred_at, INTERVAL '%1$d' SECOND)""".formatted(windowS, shardFilter);
            }
        };

        final String key;
        final String label;

        SqlPipeline(String key, String label) {
            this.key = key;
            this.label = label;
        }

        /** The table settings the pipeline needs beyond the defaults. */
        void configure(org.apache.flink.table.api.TableConfig c, SluiceConfig.Aggregation a) {
        }

        /** The query over table {@code events} whose rows go to one shard's {@code user_event_counts}. */
        abstract String select(long windowS, String shardFilter);
    }

    private Drain drainFlinkSql(String phase, SqlPipeline pipeline, LocalFlink flink, FlinkRest rest, SluiceConfig source, SluiceConfig target, long events)
            throws Exception {
        StreamExecutionEnvironment env = flink.environment();
        env.setParallelism(parallelism);
        StreamTableEnvironment t = StreamTableEnvironment.create(env);
        pipeline.configure(t.getConfig(), source.aggregation());
        t.createTemporarySystemFunction("SHARD_OF", ShardOf.class);
        t.executeSql("""
                CREATE TABLE events (
                  app_id STRING NOT NULL, user_id STRING NOT NULL, name STRING NOT NULL,
                  occurred_at TIMESTAMP(3) NOT NULL, `value` DOUBLE,
                  properties MAP<STRING NOT NULL, STRING NOT NULL>,
                  WATERMARK FOR occurred_at AS occurred_at - INTERVAL '%d' SECOND
                ) WITH (
                  'connector' = 'kafka', 'topic' = '%s', 'properties.bootstrap.servers' = '%s',
                  'properties.group.id' = 'bench-%s', 'scan.startup.mode' = 'earliest-offset',
                  'scan.bounded.mode' = 'latest-offset', 'format' = 'avro-confluent', 'avro-confluent.url' = '%s'
                )""".formatted(source.aggregation().outOfOrdernessMs() / 1000, q(source.kafka().userEventsTopic()), q(source.kafka().bootstrap()),
                pipeline.key, q(source.registry().url())));
        StatementSet inserts = t.createStatementSet();
        for (SluiceConfig.Shard shard : target.shards().list()) {
            t.executeSql("""
                    CREATE TABLE counts_%d (
                      app_id STRING, user_id STRING, event_name STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), `count` BIGINT, `sum` DOUBLE,
                      PRIMARY KEY (app_id, user_id, event_name, window_start) NOT ENFORCED
                    ) WITH (
                      'connector' = 'jdbc', 'url' = '%s', 'table-name' = 'user_event_counts', 'username' = '%s', 'password' = '%s',
                      'sink.buffer-flush.max-rows' = '2000', 'sink.buffer-flush.interval' = '200ms'
                    )""".formatted(shard.index(), q(shard.jdbcUrl() + "?reWriteBatchedInserts=true"), q(shard.user()),
                    q(shard.password() == null ? "" : shard.password())));
            String shardFilter = "SHARD_OF(app_id, %d, %d) = %d".formatted(source.routing().buckets(), target.shards().list().size(), shard.index());
            inserts.addInsertSql("INSERT INTO counts_" + shard.index() + "\n" + pipeline.select(source.aggregation().windowMs() / 1000, shardFilter)
                    + "\nON CONFLICT DO DEDUPLICATE");
        }
        JobClient job = inserts.execute().getJobClient().orElseThrow();
        awaitWithProgress(phase, job, () -> -1);
        return drain(phase, pipeline.label + " + JDBC connector (2,000-row batches)", rest, job.getJobID().toString(), events);
    }

    private void sustainedPhase(EmbeddedStack stack, LocalFlink flink, FlinkRest rest, Map<String, String> result) throws Exception {
        var ns = stack.namespace("bench-agg-sustained-", 4, settings(sustainedRate * sustainedSeconds, sustainedUsers, 0, sustainedRate));
        SluiceConfig config = ns.config();
        StreamExecutionEnvironment env = flink.environment();
        AggregationJob.defineWorkflow(env, config, AggregationJob.eventSource(config, false), AggregationJob.campaignSource(config, false),
                AggregationJob.sink(config), AggregationJob.pushSink(config), KafkaIo.deadLetterSink(config));
        JobClient job = env.executeAsync("bench-aggregation-sustained");
        String jobId = job.getJobID().toString();
        BenchSupport.Sustained run;
        double stateKeys;
        try {
            run = BenchSupport.sustain("3/3 sustained", rest, job, ns, AggregationJob.NAME, config.kafka().userEventsTopic(), sustainedRate, 10_000,
                    () -> String.format(Locale.ROOT, ", windows in state %.0f", rest.metric(jobId, "count windows", "stateWindows", "sum")));
            stateKeys = rest.metric(jobId, "count windows", "stateWindows", "sum");
        } finally {
            job.cancel().get();
        }
        long[] lat = run.lags();
        long[] cp = run.checkpoints();
        System.out.printf(Locale.ROOT, "[3/3 sustained] %,d events/s for %d s over %,d users: result latency p50 %d ms, p99 %d ms (%,d samples); "
                        + "checkpoints p50 %d ms, p99 %d ms (%d); %,.0f windows in state at the end%n", sustainedRate, sustainedSeconds, sustainedUsers,
                percentile(lat, 0.5), percentile(lat, 0.99), lat.length, percentile(cp, 0.5), percentile(cp, 0.99), cp.length, stateKeys);
        result.put("sustained_rate", String.valueOf(sustainedRate));
        result.put("p99_result_latency_ms", String.valueOf(percentile(lat, 0.99)));
        result.put("state_keys", fmt(stateKeys));
        result.put("checkpoint_ms_p50", String.valueOf(percentile(cp, 0.5)));
        result.put("checkpoint_ms_p99", String.valueOf(percentile(cp, 0.99)));
    }

    /** The events the shards' window rows count, summed: two pipelines that agree on it counted the same events. */
    private static long countedEvents(SluiceConfig config) throws Exception {
        return BenchSupport.sumOverShards(config, "SELECT coalesce(sum(count), 0) FROM user_event_counts");
    }

    private static long windowRows(StackProbe probe) throws Exception {
        return probe.rowCounts().values().stream().mapToLong(t -> t.get("user_event_counts")).sum();
    }
}
