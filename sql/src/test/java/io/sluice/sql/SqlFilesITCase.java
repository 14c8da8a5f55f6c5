package io.sluice.sql;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.model.UserEvent;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import io.sluice.jobs.aggregation.AggregationJob;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.util.TestStreamEnvironment;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.types.Row;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every file of {@code sql/} run against the embedded stack (real broker, registry stand-in, two
 * Postgres shards, MiniCluster) after the generator's records went through both jobs; each result is
 * compared with what the generator sent and what the jobs wrote. The Kafka tables are read bounded
 * ({@code sql.scan-bounded-mode = latest-offset}) so every query ends.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class SqlFilesITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    static final long MINUTE = 60_000;
    static final Set<String> COVERED = new HashSet<>(SqlScripts.INIT);

    static TestStack stack;
    static Oracle oracle;
    static List<UserEvent> events; // every event sent: the generator's and the old ones
    static List<Campaign> campaigns;
    static List<PushJob> pushJobs;
    static SqlScripts scripts;

    @BeforeAll
    static void sendRecordsAndRunTheJobs(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        // ~3 minutes of event time ending ~30 s ago: 6,000 records at 40/s, 40% subscription updates, 1% malformed
        long epoch = (System.currentTimeMillis() / 1000) * 1000 - 180_000;
        stack = base.fresh(Map.ofEntries(Map.entry("generator.count", "6000"), Map.entry("generator.rate", "40"),
                Map.entry("generator.apps", "4"), Map.entry("generator.users", "150"), Map.entry("generator.subscriptions-per-app", "200"),
                Map.entry("generator.update-fraction", "0.4"), Map.entry("generator.malformed-fraction", "0.01"),
                Map.entry("generator.campaigns", "2"), Map.entry("generator.campaign-max-per-second", "1000"),
                Map.entry("aggregation.parallelism", "2"),
                // the 20 old events (30 minutes back) are counted whichever source subtask gets its splits first: with the
                // default minute, a subtask that starts late (idle meanwhile) brings them behind the window operator's
                // watermark, and its lateness floor dead-letters them, as Flink's own windows would drop them
                Map.entry("aggregation.allowed-lateness", "2h"),
                // not the even split: app-0 and app-1 on shard 1, app-2 and app-3 on shard 0, and SQL must route as the jobs do
                Map.entry("routing.bucket-map", "0-767:0,768-1023:1")));
        // 20 events from 30 minutes ago: outside "the last 10 minutes", inside the hourly summary
        List<UserEvent> old = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            old.add(new UserEvent(RecordSequence.appId(1), "user-old-" + (i % 3), "open", epoch - 30 * MINUTE + i * 1000L, (double) i, Map.of("source", "old")));
        }
        stack.send(old.toArray(new UserEvent[0]));
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 0, epoch, true).start()) {
            oracle = g.awaitDone().oracle();
        }
        campaigns = new RecordSequence(stack.config(), stack.generator(), stack.schemaIds(), epoch, new Oracle(false)).campaigns();
        events = new ArrayList<>(old);
        events.addAll(oracle.events());

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(500);
        SubscriptionJob.defineWorkflow(env, stack.config(), SubscriptionJob.source(stack.config(), true), SubscriptionJob.sink(stack.config()),
                KafkaIo.deadLetterSink(stack.config()));
        env.execute("subscriptions-for-sql");
        // campaign definitions apply to events processed after they arrive (docs/aggregation.md), and a bounded job
        // reads both topics at once: the events are held until every subtask has both campaigns, or the first
        // users' pushes depend on which source got its split first
        env = new TestStreamEnvironment(cluster, 2); // in @BeforeAll, getExecutionEnvironment() is a cluster of its own
        env.enableCheckpointing(500);
        String held = "sql-files-events-" + System.nanoTime();
        AggregationJob.defineWorkflow(env, stack.config(),
                AggregationJob.eventSource(stack.config(), AggregationJob.eventDeserializer(stack.config()), HeldOffsets.hold(held, KafkaIo.committedOrEarliest()),
                        true),
                AggregationJob.campaignSource(stack.config(), true), AggregationJob.sink(stack.config()), AggregationJob.pushSink(stack.config()),
                KafkaIo.deadLetterSink(stack.config()));
        JobClient aggregation = env.executeAsync("aggregation-for-sql");
        TestFlink.awaitMetric(new FlinkRest(cluster.getRestAddress().get()), aggregation.getJobID().toString(), "detect segment entries",
                "campaignUpdates", "min", n -> n >= 2);
        HeldOffsets.release(held);
        aggregation.getJobExecutionResult().get(5, TimeUnit.MINUTES);
        pushJobs = stack.pushJobs();

        assertThat(pushJobs).as("the jobs' push jobs, the base of the push queries").isNotEmpty();
        assertThat(pushJobs.stream().map(PushJob::jobId).toList()).containsExactlyInAnyOrderElementsOf(oracle.pushJobs(campaigns).keySet());
        scripts = new SqlScripts(Path.of("."), stack.config(),
                Map.of("sql.scan-bounded-mode", "latest-offset", "app_id", RecordSequence.appId(2)));
    }

    @AfterAll
    static void everyScriptWasRun() {
        assertThat(COVERED).as("every .sql file of sql/ is run by this test").containsExactlyInAnyOrderElementsOf(scripts.allScripts());
    }

    private static List<Row> run(String script) throws Exception {
        return run(script, Map.of());
    }

    /** {@code params}: more query parameters than the class's (app_id and bounded reads). */
    private static List<Row> run(String script, Map<String, String> params) throws Exception {
        COVERED.add(script);
        if (params.isEmpty()) {
            return SqlRun.run(scripts, script);
        }
        Map<String, String> all = new HashMap<>(Map.of("sql.scan-bounded-mode", "latest-offset"));
        all.putAll(params);
        return SqlRun.run(new SqlScripts(scripts.dir(), stack.config(), all), script);
    }

    private static long ms(Object timestamp) {
        return ((LocalDateTime) timestamp).toInstant(ZoneOffset.UTC).toEpochMilli();
    }

    @Test
    void theInitScriptsDefineEveryTableViewAndFunction() throws Exception {
        StreamTableEnvironment sql = SqlRun.session(scripts);
        assertThat(sql.listTables()).contains("user_events", "subscription_updates", "campaigns", "push_queue", "dead_letters_raw",
                "subscriptions_0", "subscriptions_1", "user_event_counts_0", "user_event_counts_1", "sluice_progress_0", "sluice_progress_1",
                "app_hourly_summary_0", "app_hourly_summary_1");
        assertThat(sql.listViews()).contains("dead_letters", "subscriptions", "user_event_counts", "sluice_progress", "app_hourly_summary");
        assertThat(List.of(sql.listFunctions())).contains("shard_of", "bucket_of", "prop", "time_lag_ms", "push_job_id");
        List<String> ids = new ArrayList<>();
        try (var it = sql.executeSql("SELECT campaign_id, active FROM campaigns").collect()) {
            it.forEachRemaining(r -> ids.add(r.getField(0) + "/" + r.getField(1)));
        }
        assertThat(ids).containsExactlyInAnyOrderElementsOf(campaigns.stream().map(c -> c.campaignId() + "/" + c.active()).toList());
        // a subscription row read through JDBC, its jsonb as JSON text, one key by PROP, routed by SHARD_OF
        Map<String, Map<String, String>> rows = stack.subscriptionRows();
        var someRow = rows.entrySet().stream().filter(e -> !e.getValue().isEmpty()).findFirst().orElseThrow();
        String[] appSub = someRow.getKey().split("/");
        String key = someRow.getValue().keySet().iterator().next();
        try (var it = sql.executeSql("SELECT shard, SHARD_OF(app_id, '" + stack.config().router().spec() + "'), PROP(properties, '" + key
                + "') FROM subscriptions WHERE app_id = '" + appSub[0] + "' AND subscription_id = '" + appSub[1] + "'").collect()) {
            Row r = it.next();
            assertThat(r.getField(0)).isEqualTo(stack.config().router().shardOf(appSub[0]));
            assertThat(r.getField(1)).isEqualTo(r.getField(0));
            assertThat(r.getField(2)).isEqualTo(someRow.getValue().get(key));
            assertThat(it.hasNext()).isFalse();
        }
    }

    @Test
    void appLiveStreamShowsEveryEventAndUpdateOfTheApp() throws Exception {
        String app = RecordSequence.appId(2);
        List<Row> rows = run("queries/app-live-stream.sql");
        List<String> expected = new ArrayList<>();
        events.stream().filter(e -> e.appId().equals(app)).forEach(e -> expected.add("event/" + e.userId() + "/" + e.name() + "/" + e.occurredAt()));
        oracle.updates().stream().filter(u -> u.appId().equals(app)).forEach(u -> expected.add("update/" + u.subscriptionId() + "/set "
                + u.set().size() + ", unset " + u.unset().size() + "/" + u.sentAt()));
        assertThat(expected).hasSizeGreaterThan(100);
        assertThat(rows.stream().map(r -> r.getField(0) + "/" + r.getField(3) + "/" + r.getField(4) + "/" + ms(r.getField(1))).toList())
                .containsExactlyInAnyOrderElementsOf(expected);
        for (Row r : rows) {
            assertThat((Long) r.getField(2)).as("lag of a record sent minutes ago").isGreaterThan(10_000L);
            assertThat((String) r.getField(5)).startsWith("{");
        }
        SubscriptionUpdate u = oracle.updates().stream().filter(x -> x.appId().equals(app) && !x.set().isEmpty()).findFirst().orElseThrow();
        String key = u.set().keySet().iterator().next();
        assertThat(rows.stream().filter(r -> r.getField(0).equals("update") && r.getField(3).equals(u.subscriptionId()) && ms(r.getField(1)) == u.sentAt())
                .map(r -> (String) r.getField(5)).toList()).anyMatch(detail -> detail.contains(key) && detail.contains(u.set().get(key)));
    }

    @Test
    void updatesPerAppPerMinuteRanksEveryAppOfEachMinute() throws Exception {
        List<Row> rows = run("queries/updates-per-app-per-minute.sql");
        Map<String, Long> updates = new HashMap<>();
        Map<String, Set<String>> subscriptions = new HashMap<>();
        for (SubscriptionUpdate u : oracle.updates()) {
            String k = Math.floorDiv(u.sentAt(), MINUTE) * MINUTE + "/" + u.appId();
            updates.merge(k, 1L, Long::sum);
            subscriptions.computeIfAbsent(k, x -> new HashSet<>()).add(u.subscriptionId());
        }
        Map<String, String> expected = new HashMap<>();
        updates.forEach((k, n) -> expected.put(k, n + " updates, " + subscriptions.get(k).size() + " subscriptions"));
        Map<String, String> actual = new HashMap<>();
        Map<Long, List<Row>> byMinute = new TreeMap<>();
        for (Row r : rows) {
            assertThat(ms(r.getField(1)) - ms(r.getField(0))).isEqualTo(MINUTE);
            actual.put(ms(r.getField(0)) + "/" + r.getField(3), r.getField(4) + " updates, " + r.getField(5) + " subscriptions");
            byMinute.computeIfAbsent(ms(r.getField(0)), x -> new ArrayList<>()).add(r);
        }
        assertThat(expected.size()).isGreaterThan(8); // 4 apps over 3-4 minutes
        assertThat(actual).isEqualTo(expected);
        for (List<Row> minute : byMinute.values()) { // ranks 1..n by updates, descending
            minute.sort((a, b) -> Long.compare((Long) a.getField(2), (Long) b.getField(2)));
            for (int i = 0; i < minute.size(); i++) {
                assertThat(minute.get(i).getField(2)).isEqualTo((long) i + 1);
                if (i > 0) {
                    assertThat((Long) minute.get(i).getField(4)).isLessThanOrEqualTo((Long) minute.get(i - 1).getField(4));
                }
            }
        }
    }

    @Test
    void topEventsOfTheLast10MinutesCountOnlyRecentEvents() throws Exception {
        List<Row> rows = run("queries/top-events-last-10-minutes.sql");
        long cutoff = System.currentTimeMillis() - 10 * MINUTE;
        Map<String, List<UserEvent>> byName = new TreeMap<>();
        events.stream().filter(e -> e.occurredAt() > cutoff).forEach(e -> byName.computeIfAbsent(e.name(), n -> new ArrayList<>()).add(e));
        Map<String, String> expected = new TreeMap<>();
        byName.forEach((name, es) -> expected.put(name, es.size() + " events, " + es.stream().map(UserEvent::appId).distinct().count() + " apps, "
                + es.stream().map(UserEvent::userId).distinct().count() + " users, newest " + es.stream().mapToLong(UserEvent::occurredAt).max().getAsLong()));
        Map<String, String> actual = new TreeMap<>();
        rows.forEach(r -> actual.put((String) r.getField(0), r.getField(1) + " events, " + r.getField(2) + " apps, " + r.getField(3) + " users, newest "
                + ms(r.getField(4))));
        assertThat(expected).hasSize(8);
        assertThat(actual).isEqualTo(expected);
        assertThat(events.stream().filter(e -> e.userId().startsWith("user-old-")).allMatch(e -> e.occurredAt() < cutoff)).isTrue();
    }

    @Test
    void shardFreshnessAgreesWithEachShard() throws Exception {
        List<Row> rows = run("queries/shard-freshness.sql");
        Map<String, String> expected = new TreeMap<>();
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard)) {
                expected.put(shard + "/subscriptions", one(c, "SELECT count(*), (extract(epoch FROM max(updated_at)) * 1000)::bigint FROM subscriptions"));
                expected.put(shard + "/user_event_counts", one(c, "SELECT count(*), (extract(epoch FROM max(window_start)) * 1000)::bigint FROM user_event_counts"));
                try (ResultSet rs = c.createStatement().executeQuery(
                        "SELECT job, sum(records), (extract(epoch FROM max(newest_event_at)) * 1000)::bigint FROM sluice_partition_progress GROUP BY job")) {
                    while (rs.next()) {
                        expected.put(shard + "/committed by " + rs.getString(1), rs.getLong(2) + " rows, newest " + rs.getLong(3));
                    }
                }
            }
        }
        Map<String, String> actual = new TreeMap<>();
        for (Row r : rows) {
            actual.put(r.getField(0) + "/" + r.getField(1), r.getField(2) + " rows, newest " + ms(r.getField(3)));
            assertThat((Long) r.getField(4)).as("lag of " + r).isGreaterThan(0L);
        }
        assertThat(expected).containsKeys("0/committed by subscriptions", "0/committed by aggregation", "1/committed by subscriptions",
                "1/committed by aggregation");
        assertThat(actual).isEqualTo(expected);
    }

    private static String one(Connection c, String query) throws Exception {
        try (ResultSet rs = c.createStatement().executeQuery(query)) {
            rs.next();
            return rs.getLong(1) + " rows, newest " + rs.getLong(2);
        }
    }

    @Test
    void deadLettersByReasonCountEveryMalformedRecord() throws Exception {
        List<Row> rows = run("queries/dead-letters-by-reason.sql");
        Map<String, Long> expected = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : stack.readAll(stack.config().kafka().deadLettersTopic())) {
            expected.merge(TestStack.header(r, DeadLetterSerializer.TOPIC) + "/" + TestStack.header(r, DeadLetterSerializer.STAGE), 1L, Long::sum);
        }
        Map<String, Long> actual = new TreeMap<>();
        for (Row r : rows) {
            actual.merge(r.getField(0) + "/" + r.getField(1), (Long) r.getField(3), Long::sum);
            assertThat((String) r.getField(2)).as("reason kind").isNotBlank().doesNotContainPattern("[0-9]");
            assertThat((String) r.getField(4)).as("example reason").startsWith(((String) r.getField(2)).replace("N", "").substring(0, 3));
        }
        String events = stack.config().kafka().userEventsTopic();
        String updates = stack.config().kafka().subscriptionUpdatesTopic();
        assertThat(expected).isEqualTo(Map.of(events + "/decode", oracle.malformed(events), updates + "/decode", oracle.malformed(updates)));
        assertThat(oracle.malformedTotal()).isGreaterThan(20);
        assertThat(actual).isEqualTo(expected);
    }

    @Test
    void pushJobsPerCampaignPerMinuteCountEachCommittedJobOnce() throws Exception {
        List<Row> rows = run("queries/push-jobs-per-campaign-per-minute.sql");
        Map<String, String> expected = new TreeMap<>();
        Map<String, List<PushJob>> groups = new HashMap<>();
        pushJobs.forEach(p -> groups.computeIfAbsent(p.appId() + "/" + p.campaignId() + "/" + Math.floorDiv(p.createdAt(), MINUTE) * MINUTE,
                k -> new ArrayList<>()).add(p));
        groups.forEach((k, ps) -> expected.put(k, ps.size() + " jobs, " + ps.stream().map(PushJob::userId).distinct().count() + " users"));
        Map<String, String> actual = new TreeMap<>();
        rows.forEach(r -> actual.put(r.getField(0) + "/" + r.getField(1) + "/" + ms(r.getField(2)), r.getField(3) + " jobs, " + r.getField(4) + " users"));
        assertThat(actual).isEqualTo(expected);
    }

    @Test
    void aUsersWindowCountsSitNextToThePushesTheyReceived() throws Exception {
        PushJob push = pushJobs.get(pushJobs.size() / 2);
        List<Row> rows = run("queries/user-windows-and-pushes.sql", Map.of("app_id", push.appId(), "user_id", push.userId()));
        List<String> expected = new ArrayList<>();
        stack.windowRows().forEach((k, row) -> {
            String[] p = k.split("/"); // app/user/name/window start
            if (p[0].equals(push.appId()) && p[1].equals(push.userId())) {
                expected.add("window count/" + p[3] + "/" + p[2] + "/" + row.count() + "/null/null");
            }
        });
        for (PushJob p : pushJobs) {
            if (p.appId().equals(push.appId()) && p.userId().equals(push.userId())) {
                Campaign c = campaigns.stream().filter(x -> x.appId().equals(p.appId()) && x.campaignId().equals(p.campaignId())).findFirst().orElseThrow();
                expected.add("push job/" + p.createdAt() + "/" + c.eventName() + "/" + c.minCount() + "/" + p.campaignId() + "/" + p.jobId());
            }
        }
        assertThat(expected).anyMatch(s -> s.startsWith("push job/")).anyMatch(s -> s.startsWith("window count/"));
        assertThat(rows.stream().map(r -> r.getField(0) + "/" + ms(r.getField(1)) + "/" + r.getField(2) + "/" + r.getField(3) + "/" + r.getField(4)
                + "/" + r.getField(5)).toList()).containsExactlyInAnyOrderElementsOf(expected);
        assertThat(rows.stream().filter(r -> r.getField(0).equals("push job")).map(r -> (String) r.getField(6)).toList())
                .allMatch(d -> d.startsWith("rule: ") && d.contains(" within 600 s; message: Thanks for shopping!"));
    }

    @Test
    void theHourlySummaryInsertMaintainsEachAppsHoursOnItsShard() throws Exception {
        run("continuous/hourly-app-summary.sql");
        Map<String, List<UserEvent>> byAppHour = new HashMap<>();
        events.forEach(e -> byAppHour.computeIfAbsent(e.appId() + "/" + Math.floorDiv(e.occurredAt(), 60 * MINUTE) * 60 * MINUTE, k -> new ArrayList<>()).add(e));
        Map<String, String> expected = new TreeMap<>();
        byAppHour.forEach((k, es) -> expected.put(k, es.size() + " events, " + es.stream().map(UserEvent::userId).distinct().count() + " users, sum "
                + String.format(java.util.Locale.ROOT, "%.2f", es.stream().mapToDouble(e -> e.value() == null ? 0 : e.value()).sum())));
        Map<String, String> actual = new TreeMap<>();
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery(
                    "SELECT app_id, (extract(epoch FROM hour_start) * 1000)::bigint, events, users, value_sum FROM app_hourly_summary")) {
                while (rs.next()) {
                    assertThat(stack.config().router().shardOf(rs.getString(1))).as("shard of " + rs.getString(1)).isEqualTo(shard);
                    actual.put(rs.getString(1) + "/" + rs.getLong(2), rs.getLong(3) + " events, " + rs.getLong(4) + " users, sum "
                            + String.format(java.util.Locale.ROOT, "%.2f", rs.getDouble(5)));
                }
            }
        }
        assertThat(expected.keySet().stream().map(k -> k.split("/")[0]).distinct()).hasSize(4);
        assertThat(actual).isEqualTo(expected);
    }
}
