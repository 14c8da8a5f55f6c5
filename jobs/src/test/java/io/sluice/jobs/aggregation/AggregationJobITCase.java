package io.sluice.jobs.aggregation;

import io.sluice.routing.PushJobIds;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.core.model.UserEvent;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;
import io.sluice.testkit.Await;
import io.sluice.testkit.Faults;
import io.sluice.testkit.ReadSampler;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import io.sluice.testkit.TestFlink;
import io.sluice.jobs.aggregation.AggregationJob;
import io.sluice.jobs.aggregation.WindowCount;
import io.sluice.jobs.campaigns.PushJobSerializer;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.common.Decoded;
import io.sluice.jobs.common.KafkaIo;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.testutils.junit.SharedObjectsExtension;
import org.apache.flink.testutils.junit.SharedReference;
import org.apache.flink.util.Collector;
import io.sluice.core.avro.ConfluentWire;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.kafka.KafkaClients;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import static io.sluice.testkit.Await.until;
import static io.sluice.testkit.Faults.killConnections;
import static io.sluice.testkit.TestStack.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES) // a job that never converges fails instead of hanging CI
class AggregationJobITCase {
    /** A day ago, on the hour: event times the job finds plausible (aggregation.max-event-age 30 days, max-event-lead 5 min). */
    static final long EPOCH = Math.floorDiv(System.currentTimeMillis() - 86_400_000L, 3_600_000L) * 3_600_000L;
    static final long MINUTE = 60_000;

    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    /** What a test and its job in the MiniCluster share (the injected fault), per test. */
    @RegisterExtension
    final SharedObjectsExtension shared = SharedObjectsExtension.create();

    /** Generated load: events only, out of order by up to 4 s, none late; event time advances 200 per second, so the run spans ~9 windows. */
    private static Map<String, String> load(String count) {
        Map<String, String> m = new HashMap<>(Map.of("generator.count", count, "generator.update-fraction", "0", "generator.apps", "20",
                "generator.users", "8000", "generator.rate", "200", "generator.out-of-order-fraction", "0.1", "generator.out-of-order-max", "4s",
                "generator.campaigns", "0", "aggregation.out-of-orderness", "5s", "aggregation.parallelism", "2"));
        m.put("generator.zipf-exponent", "0.8");
        return m;
    }

    @Test
    void windowCountsOfAnOutOfOrderRunEqualTheOracle(TestStack base) throws Exception {
        TestStack stack = base.fresh(load("110000"));
        Oracle oracle;
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 0, EPOCH, true).start()) {
            oracle = g.awaitDone().oracle();
        }
        assertThat(oracle.events()).hasSizeGreaterThanOrEqualTo(100_000);
        assertThat(oracle.events().stream().map(UserEvent::userId).distinct().count()).isGreaterThanOrEqualTo(5_000);

        runBounded(stack);

        TestStack.assertWindowRows(stack.windowRows(), oracle.windowCounts(MINUTE), "a failure-free run");
        for (int shard = 0; shard < 2; shard++) { // every row sits on the shard the router names
            try (var c = stack.shard(shard); var rs = c.createStatement().executeQuery("SELECT DISTINCT app_id FROM user_event_counts")) {
                while (rs.next()) {
                    assertThat(stack.config().router().shardOf(rs.getString(1))).isEqualTo(shard);
                }
            }
        }
        assertThat(stack.readAll(stack.config().kafka().deadLettersTopic())).as("dead letters").isEmpty();
        try (StackProbe probe = new StackProbe(stack.config())) {
            assertThat(probe.jobProgress().get(AggregationJob.NAME)[0]).as("events committed").isEqualTo(oracle.events().size());
        }
    }

    @Test
    void aLateEventWithinTheAllowedLatenessUpdatesItsRowAndALaterOneIsADeadLetter(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1", "aggregation.out-of-orderness", "0s",
                "aggregation.allowed-lateness", "2m", "aggregation.emit-interval", "100ms"));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        try {
            stack.send(new UserEvent("app", "u1", "open", EPOCH + 10_000, 1.0, null),   // window A, 12:00 of the epoch's hour
                    new UserEvent("app", "u1", "open", EPOCH + 125_000, 2.0, null),        // window B
                    new UserEvent("app", "u1", "open", EPOCH + 200_000, 4.0, null));       // the watermark moves to +200 s
            String a = key("app", "u1", "open", EPOCH + 10_000);
            String b = key("app", "u1", "open", EPOCH + 125_000);
            awaitRows(stack, rows -> rows.size() == 3, "the first three rows");
            // periodic watermarks (200 ms) catch up with the third event: +200 s less 1 ms with no out-of-orderness.
            // The one-input operators chained after the source show it (the keyed operator's watermark metric is the
            // minimum of both its inputs, and the campaigns input is idle)
            TestFlink.awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job.getJobID().toString(), "validate events",
                    "currentInputWatermark", "min", w -> w >= EPOCH + 199_999);
            // window A ended before +60 s and took events until +179.999 s: the watermark is past that
            // window B ended before +180 s and takes events until +299.999 s: an event for it is late but allowed
            stack.send(new UserEvent("app", "u1", "open", EPOCH + 130_000, 8.0, null),
                    new UserEvent("app", "u1", "open", EPOCH + 20_000, 16.0, null));
            Map<String, Oracle.WindowRow> rows = awaitRows(stack, r -> r.get(b).count() == 2, "window B updated by the allowed late event");
            assertThat(rows.get(b)).isEqualTo(new Oracle.WindowRow(2, 10.0));
            List<ConsumerRecord<byte[], byte[]>> dead = awaitDeadLetters(stack, 1);
            assertThat(header(dead.get(0), DeadLetterSerializer.STAGE)).isEqualTo("late");
            assertThat(header(dead.get(0), DeadLetterSerializer.REASON)).startsWith("late by 179999 ms: occurred_at ").contains("allowed-lateness 120000 ms");
            assertThat(header(dead.get(0), DeadLetterSerializer.OFFSET)).isEqualTo("4");
            assertThat(stack.windowRows().get(a)).as("the window the late event missed").isEqualTo(new Oracle.WindowRow(1, 1.0));

            // implausible event times, of a valid event and of a malformed one (no name): dated before 1970, and a year
            // ahead. Each is a validate dead letter before it can move the watermark (a year ahead would make every later
            // event late); the dead letters are stamped with the time they are written (the producer refuses -5000, the
            // broker a year ahead: the job used to restart on them again and again); the next event is counted
            long sentAt = System.currentTimeMillis();
            long yearAhead = sentAt + 365 * 86_400_000L;
            stack.send(new UserEvent("app", "u1", "open", -5_000, 32.0, null), new UserEvent("app", "u1", "open", yearAhead, 32.0, null),
                    new UserEvent("app", "u1", "", -5_000, 32.0, null), new UserEvent("app", "u1", "", yearAhead, 32.0, null),
                    new UserEvent("app", "u1", "open", EPOCH + 140_000, 64.0, null));
            awaitRows(stack, r -> r.get(b).count() == 3, "window B counting the event after the implausible ones");
            List<ConsumerRecord<byte[], byte[]>> all = awaitDeadLetters(stack, 5);
            for (int i = 1; i < 5; i++) {
                ConsumerRecord<byte[], byte[]> d = all.get(i);
                assertThat(header(d, DeadLetterSerializer.STAGE)).isEqualTo("validate");
                assertThat(header(d, DeadLetterSerializer.REASON)).contains(i % 2 == 1 ? "aggregation.max-event-age" : "aggregation.max-event-lead");
                assertThat(header(d, DeadLetterSerializer.OFFSET)).isEqualTo(String.valueOf(4 + i));
                assertThat(d.timestamp()).as("the dead letter's own timestamp").isGreaterThanOrEqualTo(sentAt).isLessThan(yearAhead);
            }
            TestFlink.awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job.getJobID().toString(), "validate events",
                    "currentInputWatermark", "max", w -> w >= EPOCH + 199_999);
            assertThat(new FlinkRest(cluster.getRestAddress().get()).metric(job.getJobID().toString(), "validate events", "currentInputWatermark", "max"))
                    .as("the watermark after a year-ahead event").isLessThan((double) sentAt);
            assertThat(restartsOf(new FlinkRest(cluster.getRestAddress().get()), job)).as("restarts").isEqualTo("0");
        } finally {
            job.cancel().get();
        }
    }

    @Test
    void withAnOperatorThrowingATaskManagerLostAndShardConnectionsKilledRowsEqualTheOracleAndEachPushJobIsCommittedOnce(
            TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        Map<String, String> settings = load("100000");
        settings.put("generator.rate", "4000"); // event time moves with the wall clock, windows close during the run
        // 0.5% of events 10 minutes behind: late for the job; after the TaskManager is replaced the sources' watermarks start
        // from nothing, so only the window operator's restored lateness floor can tell them from on-time events
        settings.put("generator.late-fraction", "0.005");
        // partition 0, the whole of one source subtask, gets no event from 8 s to 20 s of event time (the TaskManager is
        // replaced at 10 s, so the subtask is restored idle: its watermark is nothing until it comes back), and is marked
        // idle after 1 s; it comes back with a late event first, which only the restored floor can judge
        settings.put("kafka.partitions", "2");
        settings.put("generator.idle-partition", "0");
        settings.put("generator.idle-from", "8s");
        settings.put("generator.idle-for", "12s");
        settings.put("aggregation.idleness", "1s");
        settings.put("aggregation.flush-max-rows", "200");
        TestStack stack = base.fresh(settings);
        List<Campaign> campaigns = List.of(
                new Campaign("buyers", RecordSequence.appId(1), "purchase", 2, 10 * MINUTE, "Thanks!", 2_000, true),
                new Campaign("browsers", RecordSequence.appId(2), "view", 3, MINUTE, "Still looking?", 2_000, true),
                new Campaign("paused", RecordSequence.appId(1), "open", 1, MINUTE, "never sent", 2_000, false));
        stack.send(campaigns.toArray(new Campaign[0]));
        SharedReference<Faults.ThrowOnce> fault = shared.add(new Faults.ThrowOnce(10_000));
        JobClient job = startUnbounded(stack, new Faults.ThrowOnceSink<>(AggregationJob.sink(stack.config()), fault));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        awaitMetric(rest, job, "activeCampaigns", 2);
        List<String> injected = new ArrayList<>();
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 4_000, EPOCH, true).start();
             ReadSampler sampler = new ReadSampler(stack, List.of(RecordSequence.appId(1), RecordSequence.appId(3)),
                     "SELECT user_id || '/' || event_name || '/' || window_start, count, sum::text FROM user_event_counts WHERE app_id = ?")) {
            until("the sink to throw once", Duration.ofMinutes(2), () -> fault.get().thrown());
            injected.add("sink threw after 10,000 rows at " + g.acked() + " events sent");
            until("40,000 events sent", Duration.ofMinutes(2), () -> g.acked() >= 40_000);
            // partition 0 is idle from 8 s (32,000 events): once the job committed it that far and a checkpoint
            // followed, the restored subtask has nothing to read there, so its validation watermark stays unknown
            Await.until("partition 0 committed up to its idle span", Duration.ofMinutes(1), Duration.ofMillis(200),
                    () -> newestCommitted(stack, 0), t -> t >= EPOCH + 7_900);
            long checkpoints = rest.completedCheckpointCount(job.getJobID().toString());
            Await.until("a checkpoint after that", Duration.ofMinutes(1), Duration.ofMillis(100),
                    () -> rest.completedCheckpointCount(job.getJobID().toString()), n -> n > checkpoints);
            assertThat(g.acked()).as("events sent when the TaskManager goes: partition 0 still idle (it comes back at 80,000)").isLessThan(76_000);
            cluster.terminateTaskManager(0).get();
            cluster.startTaskManager();
            injected.add("task manager replaced at " + g.acked() + " events sent");
            until("70,000 events sent", Duration.ofMinutes(2), () -> g.acked() >= 70_000);
            int killed = killConnections(stack, 0) + killConnections(stack, 1);
            assertThat(killed).as("the sink's shard connections killed").isPositive();
            injected.add(killed + " sink connections killed at " + g.acked() + " events sent");

            Oracle oracle = g.awaitDone().oracle();
            Map<String, Oracle.WindowRow> expected = oracle.windowCounts(MINUTE);
            Map<String, Oracle.WindowRow> actual = awaitRows(stack, r -> r.size() == expected.size()
                    && r.entrySet().stream().allMatch(e -> expected.containsKey(e.getKey()) && expected.get(e.getKey()).count() == e.getValue().count()),
                    "rows equal to the oracle after " + injected);
            TestStack.assertWindowRows(actual, expected, injected.toString());

            Map<String, String> expectedJobs = oracle.pushJobs(campaigns);
            assertThat(expectedJobs).hasSizeGreaterThan(100);
            List<PushJob> jobs = awaitPushJobs(stack, expectedJobs.size());
            Map<String, Long> perId = jobs.stream().collect(Collectors.groupingBy(PushJob::jobId, Collectors.counting()));
            assertThat(perId.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList()).as("duplicate job ids").isEmpty();
            assertThat(perId.keySet()).as("job ids after " + injected).isEqualTo(expectedJobs.keySet());
            for (PushJob j : jobs) {
                assertThat(j.campaignId() + "/" + j.userId() + "/" + j.createdAt()).isEqualTo(expectedJobs.get(j.jobId()));
            }
            sampler.assertNoRowMovedBackwards();

            // every late event is one late dead letter (the sink is at-least-once: one per source offset), and no other
            assertThat(oracle.lateEvents()).as("late events generated").isGreaterThan(50);
            Set<String> late = Await.until(oracle.lateEvents() + " late dead letters", Duration.ofMinutes(1), Duration.ofMillis(500),
                    () -> stack.readAll(stack.config().kafka().deadLettersTopic()).stream()
                            .filter(d -> "late".equals(header(d, DeadLetterSerializer.STAGE)))
                            .map(d -> header(d, DeadLetterSerializer.PARTITION) + "/" + header(d, DeadLetterSerializer.OFFSET))
                            .collect(Collectors.toSet()), s -> s.size() >= oracle.lateEvents());
            assertThat(late).as("late dead letters after " + injected).hasSize((int) oracle.lateEvents());
            UserEvent back = oracle.idleReturnEvent();
            assertThat(stack.readAll(stack.config().kafka().deadLettersTopic()).stream()
                    .filter(d -> "0".equals(header(d, DeadLetterSerializer.PARTITION))
                            && String.valueOf(back.occurredAt()).equals(header(d, DeadLetterSerializer.SOURCE_TIMESTAMP)))
                    .map(d -> header(d, DeadLetterSerializer.REASON)).toList())
                    .as("the dead letter of partition 0's first event back, restored idle: judged by the window operator's floor")
                    .isNotEmpty().allMatch(r -> r.contains("lateness floor"));
        } finally {
            fault.get().disarm();
            job.cancel().get();
        }
    }

    @Test
    void aCampaignAtFiftyPerSecondEmitsFiveHundredJobsInOrderOverNineSecondsAndAnotherIsNotHeldBack(
            TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1"));
        stack.send(new Campaign("slow", "app", "purchase", 1, 10 * MINUTE, "slow", 50, true),
                new Campaign("fast", "app", "signup", 1, 10 * MINUTE, "fast", 1_000, true));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        try {
            awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job, "activeCampaigns", 2);
            List<UserEvent> events = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                events.add(new UserEvent("app", String.format("slow-%03d", i), "purchase", EPOCH + i, null, null));
            }
            for (int i = 0; i < 50; i++) {
                events.add(new UserEvent("app", String.format("fast-%03d", i), "signup", EPOCH + 500 + i, null, null));
            }
            stack.send(events.toArray(new UserEvent[0]));
            List<ConsumerRecord<byte[], byte[]>> records = awaitPushRecords(stack, 550);
            List<ConsumerRecord<byte[], byte[]>> slow = records.stream().filter(r -> new String(r.key()).startsWith("app:slow-")).toList();
            List<ConsumerRecord<byte[], byte[]>> fast = records.stream().filter(r -> new String(r.key()).startsWith("app:fast-")).toList();
            assertThat(slow).hasSize(500);
            assertThat(fast).hasSize(50);
            assertThat(slow.stream().map(r -> new String(r.key())).toList()).as("in order")
                    .isEqualTo(events.subList(0, 500).stream().map(UserEvent::key).toList());
            long first = slow.get(0).timestamp();
            long span = slow.get(499).timestamp() - first;
            assertThat(span).as("ms from the first to the last slow job").isGreaterThanOrEqualTo(9_000);
            for (int i = 0; i + 50 < slow.size(); i++) {
                assertThat(slow.get(i + 50).timestamp() - slow.get(i).timestamp()).as("51 jobs span at least a second").isGreaterThanOrEqualTo(950);
            }
            long fastLast = fast.get(fast.size() - 1).timestamp();
            assertThat(fastLast - first).as("the fast campaign finished while the slow one had just begun").isLessThan(3_000);
            // the CloudEvents binding headers
            ConsumerRecord<byte[], byte[]> r = slow.get(0);
            PushJob j = stack.pushJobs().get(0);
            assertThat(header(r, "ce_specversion")).isEqualTo("1.0");
            assertThat(header(r, "ce_id")).isEqualTo(j.jobId()).isEqualTo(PushJobIds.of("app", "slow", "slow-000", EPOCH - EPOCH % (10 * MINUTE)));
            assertThat(header(r, "ce_type")).isEqualTo(PushJobSerializer.CE_TYPE);
            assertThat(header(r, "ce_source")).isEqualTo("/sluice/campaigns/slow");
            assertThat(header(r, "ce_time")).isEqualTo(java.time.Instant.ofEpochMilli(EPOCH).toString());
        } finally {
            job.cancel().get();
        }
    }

    @Test
    void campaignChangesTakeEffectWhileRunningAndASavepointKeepsCampaignsAndDedupState(
            TestStack base, @InjectMiniCluster MiniCluster cluster, @TempDir Path savepoints) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1"));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        stack.send(new Campaign("c1", "app", "purchase", 2, 10 * MINUTE, "hi", 100, true),
                new Campaign("c2", "app", "signup", 2, 10 * MINUTE, "welcome", 100, true));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        awaitMetric(rest, job, "activeCampaigns", 2);
        long t = EPOCH;
        stack.send(purchase("u1", ++t), purchase("u1", ++t));
        awaitPushJobs(stack, 1);

        stack.send(new Campaign("c1", "app", "purchase", 4, 10 * MINUTE, "hi", 100, true)); // raise min_count to 4
        awaitMetric(rest, job, "campaignUpdates", 3);
        stack.send(purchase("u2", ++t), purchase("u2", ++t), purchase("u2", ++t));
        // a sentinel after u2's events in the same partition: once its push is committed, u2's events were processed
        t = sendSentinel(stack, "s1", t);
        assertThat(pushes(awaitPushJobs(stack, 2))).as("u2 has 3 of 4").containsExactly("c1/u1", "c2/s1");
        stack.send(purchase("u2", ++t));
        assertThat(awaitPushJobs(stack, 3).get(2).userId()).isEqualTo("u2");

        stack.send(new Campaign("c1", "app", "purchase", 1, 10 * MINUTE, "hi", 100, false)); // deactivate
        awaitMetric(rest, job, "activeCampaigns", 1);
        stack.send(purchase("u3", ++t));
        t = sendSentinel(stack, "s2", t);
        assertThat(pushes(awaitPushJobs(stack, 4))).as("inactive: nothing for u3").containsExactly("c1/u1", "c2/s1", "c1/u2", "c2/s2");

        String savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        Configuration fromSavepoint = new Configuration();
        fromSavepoint.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        JobClient restarted = startUnbounded(stack, AggregationJob.sink(stack.config()), fromSavepoint);
        try {
            // c2 was defined before the savepoint and is not read again: only the restored broadcast state knows it
            stack.send(new UserEvent("app", "u6", "signup", ++t, null, null), new UserEvent("app", "u6", "signup", ++t, null, null));
            assertThat(awaitPushJobs(stack, 5).get(4).campaignId()).isEqualTo("c2");
            stack.send(new Campaign("c1", "app", "purchase", 1, 10 * MINUTE, "hi", 100, true)); // reactivate c1 with min_count 1
            awaitMetric(rest, restarted, "activeCampaigns", 2);
            stack.send(purchase("u1", ++t), purchase("u4", ++t));
            t = sendSentinel(stack, "s3", t);
            assertThat(pushes(awaitPushJobs(stack, 7)))
                    .as("u1 entered c1's segment in this window before the savepoint, so only u4 is new")
                    .containsExactly("c1/u1", "c2/s1", "c1/u2", "c2/s2", "c2/u6", "c1/u4", "c2/s3");
            String u1Purchases = key("app", "u1", "purchase", EPOCH);
            assertThat(stack.windowRows().get(u1Purchases).count()).as("counts continue across the savepoint").isEqualTo(3);
        } finally {
            restarted.cancel().get();
        }
    }

    /**
     * A restart inside the lateness window: u1 enters c1's segment (min_count 1, 1-minute campaign window), event time
     * moves 6 minutes on so window 0 and the segment entry are finalized and cleaned, the job stops with a savepoint and
     * comes back. Its sources' watermarks start from nothing, so only the window operator's restored floor knows that a
     * second purchase of u1 in window 0 is late: one late dead letter, the row unchanged, still one push.
     */
    @Test
    void aRestartInsideTheLatenessWindowNeitherRecountsAClosedWindowNorPushesTwice(
            TestStack base, @InjectMiniCluster MiniCluster cluster, @TempDir Path savepoints) throws Exception {
        TestStack stack = base.fresh(floorSettings("1"));
        stack.send(new Campaign("c1", "app", "purchase", 1, MINUTE, "hi", 100, true));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        awaitMetric(rest, job, "activeCampaigns", 1);
        stack.send(purchase("u1", EPOCH + 1_000));
        awaitPushJobs(stack, 1);
        stack.send(new UserEvent("app", "u9", "open", EPOCH + 6 * MINUTE, 1.0, null));
        awaitFloor(rest, job, EPOCH + 6 * MINUTE - 1);
        String savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        Configuration fromSavepoint = new Configuration();
        fromSavepoint.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        JobClient restarted = startUnbounded(stack, AggregationJob.sink(stack.config()), fromSavepoint);
        try {
            assertThat(sendLatePurchaseAndSentinel(stack)).as("pushes a read_committed consumer sees")
                    .containsExactly("c1/u1@" + (EPOCH + 1_000), "c1/u1@" + (EPOCH + 6 * MINUTE + 1_000));
            assertLateDeadLetterAndRowUnchanged(stack, "2");
            assertThat(restartsOf(rest, restarted)).isEqualTo("0");
        } finally {
            restarted.cancel().get();
        }
    }

    /**
     * The same without a restart: u1's partition goes idle while the other one moves event time 6 minutes on, then u1's
     * partition comes back with a purchase in window 0. Its own subtask's watermark is still where that partition left
     * it, so validation lets the event through; the window operator, which cleaned window 0, dead-letters it.
     */
    @Test
    void anIdlePartitionThatComesBackCannotRecountAClosedWindowOrPushTwice(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(floorSettings("2"));
        String other = userInOtherPartition("u1", 2);
        stack.send(new Campaign("c1", "app", "purchase", 1, MINUTE, "hi", 100, true));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        try {
            awaitMetric(rest, job, "activeCampaigns", 1);
            stack.send(purchase("u1", EPOCH + 1_000), purchase(other, EPOCH + 1_000));
            awaitPushJobs(stack, 2);
            stack.send(new UserEvent("app", other, "open", EPOCH + 6 * MINUTE, 1.0, null)); // u1's partition is idle meanwhile
            awaitFloor(rest, job, EPOCH + 6 * MINUTE - 1);
            assertThat(sendLatePurchaseAndSentinel(stack)).as("pushes a read_committed consumer sees")
                    .containsExactlyInAnyOrder("c1/u1@" + (EPOCH + 1_000), "c1/" + other + "@" + (EPOCH + 1_000), "c1/u1@" + (EPOCH + 6 * MINUTE + 1_000));
            assertLateDeadLetterAndRowUnchanged(stack, "1");
            assertThat(restartsOf(rest, job)).isEqualTo("0");
        } finally {
            job.cancel().get();
        }
    }

    /**
     * A 1.1 MB undecodable record (the input topic and the producer allow it; the dead-letter topic keeps the broker's
     * 1 MiB): its dead letter keeps the headers and a prefix, says it was cut and how large the record was, and the
     * job goes on without a restart. It used to fail the write and restart on the same record again and again.
     */
    @Test
    void anUndecodableRecordOverAMegabyteIsATruncatedDeadLetterAndTheJobGoesOn(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1", "aggregation.emit-interval", "100ms"));
        String topic = stack.config().kafka().userEventsTopic();
        try (Admin admin = Admin.create(KafkaClients.clientProperties(stack.config()))) {
            admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.TOPIC, topic),
                    List.of(new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET)))).all().get(30, TimeUnit.SECONDS);
        }
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        try {
            byte[] big = new byte[1_100_000];
            big[0] = 1; // not the Confluent magic byte
            try (var producer = stack.producer(Map.of("max.request.size", "2000000"))) {
                producer.send(new ProducerRecord<>(topic, "app:u1".getBytes(java.nio.charset.StandardCharsets.UTF_8), big)).get(30, TimeUnit.SECONDS);
            }
            stack.send(new UserEvent("app", "u1", "open", EPOCH + 1_000, 1.0, null));
            awaitRows(stack, r -> r.size() == 1, "the event after the big record counted");
            ConsumerRecord<byte[], byte[]> dead = awaitDeadLetters(stack, 1).get(0);
            assertThat(header(dead, DeadLetterSerializer.STAGE)).isEqualTo("decode");
            assertThat(header(dead, DeadLetterSerializer.REASON)).startsWith("not-wire-format");
            assertThat(header(dead, DeadLetterSerializer.OFFSET)).isEqualTo("0");
            assertThat(header(dead, DeadLetterSerializer.TRUNCATED)).isEqualTo("value");
            assertThat(header(dead, DeadLetterSerializer.ORIGINAL_VALUE_BYTES)).isEqualTo("1100000");
            assertThat(dead.value()).hasSizeBetween(1_000_000, 1_048_576);
            assertThat(dead.value()[0]).as("a prefix of the original").isEqualTo((byte) 1);
            assertThat(restartsOf(new FlinkRest(cluster.getRestAddress().get()), job)).isEqualTo("0");
        } finally {
            job.cancel().get();
        }
    }

    /**
     * The job runs and commits offsets (of user-events and of campaigns), then is submitted again without its state (lost
     * checkpoints, a second docker-compose setup): refused at once, naming the group and the fix, with no restart loop.
     * With aggregation.allow-stateless-start it starts, and knows the campaign defined before: the compacted campaigns
     * topic is read from its beginning, not from the group's committed offset past the definition.
     */
    @Test
    void aStartWithoutStateWhereTheGroupHasCommittedOffsetsIsRefusedUnlessAllowedAndThenKeepsItsCampaigns(TestStack base, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1", "aggregation.emit-interval", "100ms"));
        stack.send(new Campaign("welcome", "app", "signup", 1, 10 * MINUTE, "hi", 100, true));
        JobClient first = startUnbounded(stack, AggregationJob.sink(stack.config()));
        String group = KafkaClients.groupId(stack.config(), AggregationJob.NAME);
        TopicPartition campaigns = new TopicPartition(stack.config().kafka().campaignsTopic(), 0);
        TopicPartition events = new TopicPartition(stack.config().kafka().userEventsTopic(), 0);
        try (Admin admin = Admin.create(KafkaClients.clientProperties(stack.config()))) {
            stack.send(new UserEvent("app", "u1", "open", EPOCH + 1_000, 1.0, null));
            Await.until("group " + group + " to commit past the campaign and the event", Duration.ofMinutes(1), Duration.ofMillis(300),
                    () -> admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(),
                    m -> m.containsKey(campaigns) && m.get(campaigns).offset() >= 1 && m.containsKey(events) && m.get(events).offset() >= 1);
        } finally {
            first.cancel().get();
        }
        JobClient second = startUnbounded(stack, AggregationJob.sink(stack.config()));
        assertThatThrownBy(() -> second.getJobExecutionResult().get(60, TimeUnit.SECONDS)).as("refused, not restarted over and over")
                .hasStackTraceContaining("starts without a checkpoint or savepoint, but its consumer group " + group
                        + " has committed offsets for 1 partitions of " + events.topic())
                .hasStackTraceContaining("aggregation.allow-stateless-start");
        TestStack allowed = stack.with(Map.of("aggregation.allow-stateless-start", "true"));
        JobClient third = startUnbounded(allowed, AggregationJob.sink(allowed.config()));
        try {
            // the definition is read again from the beginning of campaigns (before, never: the count stayed 0)
            awaitMetric(new FlinkRest(cluster.getRestAddress().get()), third, "activeCampaigns", 1);
            allowed.send(new UserEvent("app", "u2", "open", EPOCH + 2_000, 1.0, null), new UserEvent("app", "u3", "signup", EPOCH + 3_000, null, null));
            awaitRows(allowed, r -> r.containsKey(key("app", "u2", "open", EPOCH)), "the allowed stateless start counting");
            assertThat(pushes(awaitPushJobs(allowed, 1))).as("the campaign defined before the start without state still pushes")
                    .containsExactly("welcome/u3");
        } finally {
            third.cancel().get();
        }
    }

    /**
     * A device clock a few minutes fast: an event dated 4 minutes ahead (inside aggregation.max-event-lead, 5 minutes) is
     * counted in its own window, and an on-time event read after it is counted too, not judged late: the watermark never
     * runs ahead of the wall clock. Before, the fast event carried its partition's watermark 4 minutes ahead, and every
     * on-time event behind it became a late dead letter.
     */
    @Test
    void anEventFromAClockMinutesFastIsCountedAndTheOnTimeEventsAfterItAreNotLate(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1", "aggregation.window", "1m",
                "aggregation.allowed-lateness", "1m", "aggregation.out-of-orderness", "0s", "aggregation.emit-interval", "100ms"));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        try {
            long fast = System.currentTimeMillis() + 4 * MINUTE;
            stack.send(new UserEvent("app", "u1", "open", fast, 1.0, null));
            awaitRows(stack, r -> r.containsKey(key("app", "u1", "open", fast)), "the event from the fast clock counted");
            awaitFloor(rest, job, System.currentTimeMillis()); // a watermark taken after the fast event was read
            long onTime = System.currentTimeMillis();
            stack.send(new UserEvent("app", "u2", "open", onTime, 1.0, null));
            Map<String, Oracle.WindowRow> rows = awaitRows(stack, r -> r.containsKey(key("app", "u2", "open", onTime)), "the on-time event counted");
            assertThat(rows.get(key("app", "u1", "open", fast))).isEqualTo(new Oracle.WindowRow(1, 1.0));
            assertThat(rows.get(key("app", "u2", "open", onTime))).isEqualTo(new Oracle.WindowRow(1, 1.0));
            assertThat(stack.readAll(stack.config().kafka().deadLettersTopic())).as("no dead letters").isEmpty();
            assertThat(restartsOf(rest, job)).isEqualTo("0");
        } finally {
            job.cancel().get();
        }
    }

    /**
     * Two apps define a campaign "welcome" (records keyed app_id:campaign_id): neither overwrites the other, each app's
     * users get their own app's message with job ids that differ, and each campaign is paced on its own. A definition
     * whose key names another app is a validate dead letter.
     */
    @Test
    void twoAppsWithTheSameCampaignIdEachGetTheirOwnPushes(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "aggregation.parallelism", "2"));
        stack.send(new Campaign("welcome", "app-a", "signup", 1, 10 * MINUTE, "hi from a", 100, true),
                new Campaign("welcome", "app-b", "signup", 1, 10 * MINUTE, "hi from b", 100, true));
        try (var producer = stack.producer(Map.of())) { // a definition of app-b's welcome under app-a's key
            byte[] value = new ConfluentWire(stack.schemaIds().get(stack.config().kafka().campaignsTopic()), SluiceAvro.CAMPAIGN.schema())
                    .encode(SluiceAvro.CAMPAIGN.toAvro(new Campaign("welcome", "app-b", "signup", 1, 10 * MINUTE, "wrong", 100, false)));
            producer.send(new ProducerRecord<>(stack.config().kafka().campaignsTopic(), "app-a:welcome".getBytes(java.nio.charset.StandardCharsets.UTF_8),
                    value)).get(30, TimeUnit.SECONDS);
        }
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        try {
            awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job, "activeCampaigns", 2);
            stack.send(new UserEvent("app-a", "u1", "signup", EPOCH + 1_000, null, null), new UserEvent("app-b", "u1", "signup", EPOCH + 1_000, null, null));
            List<PushJob> jobs = awaitPushJobs(stack, 2);
            assertThat(jobs).extracting(j -> j.appId() + "/" + j.campaignId() + "/" + j.userId() + "/" + j.message())
                    .containsExactlyInAnyOrder("app-a/welcome/u1/hi from a", "app-b/welcome/u1/hi from b");
            assertThat(jobs.get(0).jobId()).isNotEqualTo(jobs.get(1).jobId());
            ConsumerRecord<byte[], byte[]> dead = awaitDeadLetters(stack, 1).get(0);
            assertThat(header(dead, DeadLetterSerializer.STAGE)).isEqualTo("validate");
            assertThat(header(dead, DeadLetterSerializer.REASON)).contains("record key 'app-a:welcome' does not name it; expected 'app-b:welcome'");
        } finally {
            job.cancel().get();
        }
    }

    /**
     * Two deployments on one broker (production and staging), each with its own deployment.id and topics: the second
     * starts while the first has push-queue transactions open, and both push all along. Neither is fenced (no restart),
     * each pushes every job once, and each has its own consumer group and transactional ids, derived from its id.
     */
    @Test
    void twoDeploymentsWithTheirOwnIdsOnOneBrokerFenceNeitherTheOthersProducersNorItsOffsets(TestStack base, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        String suffix = Long.toString(System.nanoTime(), 36); // ids no other test or rerun on this broker has used
        TwoDeployments run = runTwoDeployments(base, cluster, "alpha-" + suffix, "beta-" + suffix, Duration.ofSeconds(60));
        assertThat(run.secondStarted()).as("beta's campaign active within 20 s of its start").isTrue();
        assertThat(run.restarts()).as("restarts of alpha and beta").containsExactly("0", "0");
        assertThat(run.pushes()).as("alpha's and beta's pushes").containsExactly(run.expected(), run.expected());
        assertThat(run.pushCounts()).as("alpha's and beta's push records").containsExactly(run.expected().size(), run.expected().size());
        assertThat(run.transactionalIds()).as("transactional ids on the broker").isNotEmpty()
                .allMatch(id -> id.startsWith("sluice-alpha-" + suffix + "-push-") || id.startsWith("sluice-beta-" + suffix + "-push-"))
                .anyMatch(id -> id.startsWith("sluice-alpha-" + suffix + "-push-")).anyMatch(id -> id.startsWith("sluice-beta-" + suffix + "-push-"));
        assertThat(run.groups()).as("consumer groups of the aggregation job")
                .contains("sluice-alpha-" + suffix + "-aggregation", "sluice-beta-" + suffix + "-aggregation");
    }

    /**
     * The control: the same two deployments sharing one deployment.id (as two deployments with the old shared defaults
     * did) share transactional ids, and each one's producers fence the other's: a ProducerFencedException restarts a
     * job (pushes are lost too: a fenced commit counts as done; printed, not asserted, as that depends on timing). So
     * the test above, which asserts no restart, can fail.
     */
    /** Run by {@link TwoDeploymentsControlITCase} on a MiniCluster of its own: fenced sinks can leave a TaskManager unusable for later tests. */
    void theControlTwoDeploymentsSharingOneIdFenceEachOther(TestStack base, MiniCluster cluster) throws Exception {
        String shared = "gamma-" + Long.toString(System.nanoTime(), 36);
        TwoDeployments run = runTwoDeployments(base, cluster, shared, shared, Duration.ofSeconds(2));
        System.out.println("two deployments sharing one id: second started " + run.secondStarted() + ", restarts " + run.restarts() + ", pushes " + run.pushes().get(0).size() + " and "
                + run.pushes().get(1).size() + " of " + run.expected().size() + " distinct, " + run.pushCounts() + " in all");
        assertThat(run.restarts()).as("restarts of the two deployments sharing an id: fencing").isNotEqualTo(List.of("0", "0"));
    }

    private record TwoDeployments(boolean secondStarted, List<String> restarts, List<Set<String>> pushes, List<Integer> pushCounts, Set<String> expected,
                                  Set<String> transactionalIds, Set<String> groups) {
    }

    /**
     * Deployment a starts and pushes a purchase of a new user every 50 ms, b starts meanwhile, then both get the same
     * purchases for 3 s more. Waits up to {@code pushWait} for every push in both, then reports what each saw.
     */
    private TwoDeployments runTwoDeployments(TestStack base, MiniCluster cluster, String idA, String idB, Duration pushWait) throws Exception {
        Map<String, String> settings = Map.of("kafka.partitions", "1", "aggregation.parallelism", "1", "aggregation.emit-interval", "100ms");
        TestStack a = base.fresh(with(settings, "deployment.id", idA));
        TestStack b = base.fresh(with(settings, "deployment.id", idB));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        Set<String> expected = new java.util.TreeSet<>();
        List<JobClient> jobs = new ArrayList<>();
        try {
            for (TestStack s : List.of(a, b)) {
                s.send(new Campaign("c1", "app", "purchase", 1, 10 * MINUTE, "hi", 1_000, true));
            }
            jobs.add(startUnbounded(a, AggregationJob.sink(a.config())));
            awaitMetric(rest, jobs.get(0), "activeCampaigns", 1);
            int user = 0;
            jobs.add(startUnbounded(b, AggregationJob.sink(b.config())));
            long bStarting = System.currentTimeMillis();
            boolean bActive;
            while (!(bActive = campaignActive(rest, jobs.get(1))) && System.currentTimeMillis() - bStarting < 20_000) { // a pushes while b starts
                a.send(purchase("u" + user, EPOCH + user));
                expected.add("u" + user++);
                Thread.sleep(50);
            }
            System.out.printf("deployment %s: campaign active %s, %d ms after its start%n", idB, bActive, System.currentTimeMillis() - bStarting);
            for (int i = 0; i < user; i++) {
                b.send(purchase("u" + i, EPOCH + i));
            }
            long until = System.currentTimeMillis() + 3_000;
            for (; System.currentTimeMillis() < until; user++) {
                UserEvent e = purchase("u" + user, EPOCH + user);
                a.send(e);
                b.send(e);
                expected.add("u" + user);
                Thread.sleep(50); // pacing the load, not waiting for a result
            }
            List<Set<String>> pushes = new ArrayList<>();
            List<Integer> counts = new ArrayList<>();
            List<String> restarts = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                TestStack s = i == 0 ? a : b;
                List<PushJob> seen;
                try {
                    seen = Await.until("every push of deployment " + (i == 0 ? idA : idB), pushWait, Duration.ofMillis(300), s::pushJobs,
                            j -> j.stream().map(PushJob::userId).collect(Collectors.toSet()).equals(expected));
                } catch (AssertionError timedOut) {
                    seen = s.pushJobs();
                }
                pushes.add(seen.stream().map(PushJob::userId).collect(Collectors.toCollection(java.util.TreeSet::new)));
                counts.add(seen.size());
                restarts.add(restartsOf(rest, jobs.get(i)));
            }
            try (Admin admin = Admin.create(KafkaClients.clientProperties(a.config()))) {
                Set<String> ids = admin.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
                        .map(org.apache.kafka.clients.admin.TransactionListing::transactionalId)
                        .filter(id -> id.startsWith("sluice-" + idA + "-") || id.startsWith("sluice-" + idB + "-")).collect(Collectors.toSet());
                Set<String> groups = new java.util.TreeSet<>();
                for (TestStack s : List.of(a, b)) { // the groups that committed offsets for their deployment's events
                    String group = KafkaClients.groupId(s.config(), AggregationJob.NAME);
                    if (admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS).keySet().stream()
                            .anyMatch(tp -> tp.topic().equals(s.config().kafka().userEventsTopic()))) {
                        groups.add(group);
                    }
                }
                return new TwoDeployments(bActive, restarts, pushes, counts, expected, ids, groups);
            }
        } finally {
            TestFlink.cancelIfRunning(jobs.toArray(new JobClient[0])); // fenced jobs may take a while to end; later tests need their slots
        }
    }

    private static boolean campaignActive(FlinkRest rest, JobClient job) {
        try {
            return rest.metric(job.getJobID().toString(), "detect segment entries", "activeCampaigns", "min") == 1;
        } catch (Exception notYetRunning) {
            return false;
        }
    }

    private static Map<String, String> with(Map<String, String> settings, String key, String value) {
        Map<String, String> m = new HashMap<>(settings);
        m.put(key, value);
        return m;
    }

    /**
     * The push queue's POOLING transactions across a downscale: pushes at parallelism 2, stop with a savepoint, resume at
     * parallelism 1. A read_committed consumer sees the later pushes promptly (no transaction of the old subtask 1 left
     * open to pin the partition's last stable offset, FLINK-40626), and every push once.
     */
    @Test
    void aDownscaleFromASavepointLeavesNoTransactionHoldingBackTheQueue(TestStack base, @InjectMiniCluster MiniCluster cluster,
                                                                        @TempDir Path savepoints) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "aggregation.parallelism", "2", "kafka.transaction-timeout", "5m"));
        stack.send(new Campaign("c1", "app", "purchase", 1, MINUTE, "hi", 1_000, true));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        awaitMetric(rest, job, "activeCampaigns", 1);
        for (int i = 0; i < 20; i++) {
            stack.send(purchase("u" + i, EPOCH + 1_000 + i));
        }
        awaitPushJobs(stack, 20);
        String savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        Configuration fromSavepoint = new Configuration();
        fromSavepoint.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        TestStack one = stack.with(Map.of("aggregation.parallelism", "1"));
        JobClient downscaled = startUnbounded(one, AggregationJob.sink(one.config()), fromSavepoint);
        try {
            long sentAt = System.currentTimeMillis();
            for (int i = 20; i < 40; i++) {
                one.send(purchase("u" + i, EPOCH + 2 * MINUTE + i));
            }
            List<PushJob> jobs = Await.until("40 committed push jobs after the downscale", Duration.ofSeconds(60), Duration.ofMillis(200),
                    one::pushJobs, j -> j.size() >= 40);
            System.out.printf("downscale 2 -> 1: the 20 later pushes were visible to a read_committed consumer %d ms after they were sent%n",
                    System.currentTimeMillis() - sentAt);
            assertThat(jobs.stream().map(PushJob::jobId).distinct().count()).as("distinct job ids").isEqualTo(40);
            assertThat(jobs).hasSize(40);
        } finally {
            downscaled.cancel().get();
        }
    }

    /**
     * 2 → 3 → 2 subtasks under a live generator, each step a stop with a savepoint and a resume from it: keyed windows,
     * pacer queues and "sent" marks open across both steps are split into the 720 key groups of
     * {@code deployment.max-parallelism} and regrouped, and the push queue's POOLING transactions meet an upscale and a
     * downscale. The rows equal the oracle and a read_committed consumer sees every push once.
     */
    @Test
    void rescaledTwoToThreeToTwoFromSavepointsTheWindowsAndPushesEqualTheOracle(TestStack base, @InjectMiniCluster MiniCluster cluster,
                                                                               @TempDir Path savepoints) throws Exception {
        Map<String, String> settings = load("60000");
        settings.put("kafka.partitions", "6");
        TestStack two = base.fresh(settings);
        TestStack three = two.with(Map.of("aggregation.parallelism", "3"));
        List<Campaign> campaigns = List.of(
                new Campaign("buyers", RecordSequence.appId(1), "purchase", 2, 10 * MINUTE, "Thanks!", 2_000, true),
                new Campaign("browsers", RecordSequence.appId(2), "view", 3, MINUTE, "Still looking?", 2_000, true));
        two.send(campaigns.toArray(new Campaign[0]));
        JobClient job = startUnbounded(two, AggregationJob.sink(two.config()));
        List<String> steps = new ArrayList<>();
        try {
            // campaigns apply to events processed after their definitions arrive (docs/aggregation.md): the oracle expects a
            // push for every segment member, so no event may be sent before both campaigns are active
            awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job, "activeCampaigns", 2);
        } catch (AssertionError | RuntimeException e) {
            TestFlink.cancelIfRunning(job);
            throw e;
        }
        try (LoadGenerator g = new LoadGenerator(two.config(), two.generator(), two.schemaIds(), 5_000, EPOCH, true).start()) {
            for (TestStack next : List.of(three, two)) {
                long at = g.acked() + 15_000;
                until(at + " events sent", Duration.ofMinutes(2), () -> g.acked() >= at || !g.isRunning());
                String savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
                steps.add("stopped with a savepoint at " + g.acked() + " events sent, resumed at parallelism " + next.config().aggregation().parallelism());
                Configuration fromSavepoint = new Configuration();
                fromSavepoint.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
                job = startUnbounded(next, AggregationJob.sink(next.config()), fromSavepoint);
                TestFlink.awaitRestored(cluster, job.getJobID(), savepoint, next.config().aggregation().parallelism());
            }
            Oracle oracle = g.awaitDone().oracle();
            Map<String, Oracle.WindowRow> expected = oracle.windowCounts(MINUTE);
            Map<String, Oracle.WindowRow> actual = awaitRows(two, r -> r.size() == expected.size()
                    && r.entrySet().stream().allMatch(e -> expected.containsKey(e.getKey()) && expected.get(e.getKey()).count() == e.getValue().count()),
                    "rows equal to the oracle after " + steps);
            TestStack.assertWindowRows(actual, expected, steps.toString());
            Map<String, String> expectedJobs = oracle.pushJobs(campaigns);
            assertThat(expectedJobs).hasSizeGreaterThan(100);
            List<PushJob> jobs;
            try {
                jobs = awaitPushJobs(two, expectedJobs.size());
            } catch (AssertionError e) { // which pushes, and where the run was when they were due
                java.util.Set<String> seen = two.pushJobs().stream().map(PushJob::jobId).collect(Collectors.toSet());
                throw new AssertionError("push jobs missing after " + steps + ": " + expectedJobs.entrySet().stream()
                        .filter(j -> !seen.contains(j.getKey())).map(j -> j.getKey() + " (" + j.getValue() + ")").toList(), e);
            }
            Map<String, Long> perId = jobs.stream().collect(Collectors.groupingBy(PushJob::jobId, Collectors.counting()));
            assertThat(perId.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList()).as("duplicate job ids").isEmpty();
            assertThat(perId.keySet()).as("job ids after " + steps).isEqualTo(expectedJobs.keySet());
            System.out.println("rescaled 2 -> 3 -> 2: " + steps + "; " + actual.size() + " window rows, " + jobs.size() + " push jobs");
        } finally {
            TestFlink.cancelIfRunning(job);
        }
    }

    /**
     * Pacing as a read_committed consumer sees it: push jobs become visible when the checkpoint covering them commits,
     * so a 50/s campaign arrives in bursts of up to 50/s times the checkpoint interval (500 ms). A shard locked for 20 s
     * keeps its window rows pending (in the checkpoints) and holds back neither the checkpoints nor the push queue: no
     * second has more than one extra checkpoint's jobs and the one second the sink waits for a batch that has not
     * failed yet. (When the sink waited for every shard at each checkpoint, the consumer got 1,012-1,038 jobs in the
     * second after the lock.)
     */
    @Test
    void aReadCommittedConsumerOfAPacedCampaignGetsNoBurstWhileAShardIsLocked(TestStack base, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "aggregation.parallelism", "1", "aggregation.emit-interval", "100ms"));
        stack.send(new Campaign("c1", "app", "purchase", 1, 10 * MINUTE, "hi", 50, true));
        JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
        int users = 1_500; // 30 s of pacing at 50/s
        long lockSeconds = 20;
        List<Long> receivedAt = new ArrayList<>();
        java.util.Properties p = KafkaClients.clientProperties(stack.config());
        p.put("isolation.level", "read_committed");
        try (var consumer = new org.apache.kafka.clients.consumer.KafkaConsumer<byte[], byte[]>(p,
                new org.apache.kafka.common.serialization.ByteArrayDeserializer(), new org.apache.kafka.common.serialization.ByteArrayDeserializer());
             var lock = stack.shard(stack.config().router().shardOf("app"))) {
            consumer.assign(List.of(new org.apache.kafka.common.TopicPartition(stack.config().kafka().pushQueueTopic(), 0)));
            consumer.seekToBeginning(consumer.assignment());
            awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job, "activeCampaigns", 1);
            UserEvent[] events = new UserEvent[users];
            for (int i = 0; i < users; i++) {
                events[i] = purchase("u" + i, EPOCH + 1_000 + i);
            }
            stack.send(events);
            long lockedAt = 0;
            long unlockedAt = 0;
            double maxPending = 0; // the locked shard's metrics during the lock
            double maxSecondsSinceCommit = 0;
            long lastMetricRead = 0;
            FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
            long lastFiller = 0;
            long deadline = System.currentTimeMillis() + 120_000;
            while (receivedAt.size() < users && System.currentTimeMillis() < deadline) {
                for (var ignored : consumer.poll(Duration.ofMillis(50))) {
                    receivedAt.add(System.currentTimeMillis());
                }
                if (System.currentTimeMillis() - lastFiller >= 200) { // live traffic: window rows for the locked shard all along
                    lastFiller = System.currentTimeMillis();
                    stack.send(new UserEvent("app", "filler", "view", EPOCH + 2_000, 1.0, null));
                }
                if (lockedAt == 0 && receivedAt.size() >= 100) { // pacing is under way: lock the app's shard
                    lock.setAutoCommit(false);
                    lock.createStatement().execute("LOCK TABLE user_event_counts IN ACCESS EXCLUSIVE MODE");
                    lockedAt = System.currentTimeMillis();
                } else if (lockedAt > 0 && unlockedAt == 0 && System.currentTimeMillis() - lockedAt >= lockSeconds * 1000) {
                    lock.commit();
                    unlockedAt = System.currentTimeMillis();
                } else if (lockedAt > 0 && unlockedAt == 0 && System.currentTimeMillis() - lastMetricRead >= 500) {
                    lastMetricRead = System.currentTimeMillis(); // REST answers from a cache it refreshes on request: read often
                    String prefix = "shard." + stack.config().router().shardOf("app") + ".";
                    maxPending = Math.max(maxPending, rest.metric(job.getJobID().toString(), "upsert window counts", prefix + "pendingRows", "max"));
                    maxSecondsSinceCommit = Math.max(maxSecondsSinceCommit,
                            rest.metric(job.getJobID().toString(), "upsert window counts", prefix + "secondsSinceLastCommit", "max"));
                }
            }
            assertThat(receivedAt).as("push jobs a read_committed consumer received within 2 min").hasSize(users);
            assertThat(unlockedAt).as("the shard was locked and unlocked while jobs were paced out").isPositive();
            assertThat(maxPending).as("the locked shard's pendingRows during the lock").isPositive();
            assertThat(maxSecondsSinceCommit).as("its secondsSinceLastCommit during the 20 s lock").isBetween(15.0, (double) lockSeconds + 3);
            String prefix = "shard." + stack.config().router().shardOf("app") + ".";
            TestFlink.awaitMetric(rest, job.getJobID().toString(), "upsert window counts", prefix + "pendingRows", "max", v -> v == 0);
            TestFlink.awaitMetric(rest, job.getJobID().toString(), "upsert window counts", prefix + "secondsSinceLastCommit", "max", v -> v == 0);
            int most = 0;
            for (int i = 0, j = 0; i < receivedAt.size(); i++) {
                while (receivedAt.get(i) - receivedAt.get(j) >= 1_000) {
                    j++;
                }
                most = Math.max(most, i - j + 1);
            }
            int mostBefore = 0;
            for (int i = 0, j = 0; i < receivedAt.size() && receivedAt.get(i) < lockedAt; i++) {
                while (receivedAt.get(i) - receivedAt.get(j) >= 1_000) {
                    j++;
                }
                mostBefore = Math.max(mostBefore, i - j + 1);
            }
            System.out.printf("a 50/s campaign seen by a read_committed consumer (500 ms checkpoints): at most %d jobs in one second before the lock, "
                    + "%d in one second overall, with shard locked for %d s; the locked shard's pendingRows up to %.0f, secondsSinceLastCommit up to %.0f%n",
                    mostBefore, most, lockSeconds, maxPending, maxSecondsSinceCommit);
            assertThat(mostBefore).as("jobs in any second before the lock: 50/s, in bursts of one checkpoint").isLessThanOrEqualTo(50 + 25);
            // one checkpoint's jobs more than the pace, plus at most the 1 s the flush before a barrier waits for a batch
            // that has not failed yet (once, when the lock starts)
            assertThat(most).as("jobs in any second, the lock included").isLessThanOrEqualTo(50 + 25 + 50);
        } finally {
            job.cancel().get();
        }
    }

    /**
     * A backlog, as after a restart: one source subtask reads two partitions, each 150 s of event time (6,000 events)
     * behind, and decoding is slowed to ~0.5 ms a record, so the task is busy, not backpressured (Flink's idleness clock
     * runs). One Kafka consumer hands the subtask a fetch of one partition at a time, and with the consumer's 1 MiB a
     * fetch is a partition's whole backlog: the other partition delivers nothing for ~3 s, longer than
     * {@code aggregation.idleness} (1 s). With Flink's {@code withIdleness} (the control: the plain Kafka source) it goes
     * idle, the watermark follows the partition being read to +145 s, and the other partition's first window is
     * dead-lettered as late. The job's source and idleness ({@link io.sluice.jobs.common.BacklogAwareIdleness}) let no
     * partition go idle while the subtask's consumer has records pending, so the same backlog, in the same 1 MiB
     * fetches, has nothing late and every window counted. (A chaos run lost 170 on-time events after a JobManager
     * failover this way, with 256 KiB fetches and the default 10 s idleness.)
     */
    @Test
    void aPartitionWaitingForItsTurnInABacklogHasNoneOfItsEventsJudgedLate(TestStack base) throws Exception {
        for (boolean plain : List.of(true, false)) {
            TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "aggregation.parallelism", "1", "aggregation.idleness", "1s",
                    "aggregation.partition-fetch-bytes", "1048576", "aggregation.out-of-orderness", "5s"));
            String first = "u0";
            String second = userInOtherPartition(first, 2);
            List<UserEvent> events = new ArrayList<>();
            for (int i = 0; i < 6_000; i++) { // 150 s of event time in each partition, 25 ms apart
                events.add(new UserEvent("app", first, "view", EPOCH + i * 25L, 1.0, null));
                events.add(new UserEvent("app", second, "view", EPOCH + i * 25L, 1.0, null));
            }
            stack.send(events.toArray(new UserEvent[0]));

            var slow = new SlowDeserializer(AggregationJob.eventDeserializer(stack.config()));
            var source = plain
                    ? KafkaIo.source(stack.config(), AggregationJob.NAME, stack.config().kafka().userEventsTopic(), slow, KafkaIo.committedOrEarliest(), true)
                    : AggregationJob.eventSource(stack.config(), slow, KafkaIo.committedOrEarliest(), true);
            StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
            env.enableCheckpointing(500);
            AggregationJob.defineWorkflow(env, stack.config(), source, AggregationJob.campaignSource(stack.config(), true), AggregationJob.sink(stack.config()),
                    AggregationJob.pushSink(stack.config()), KafkaIo.deadLetterSink(stack.config()));
            env.execute("aggregation-backlog-" + (plain ? "plain" : "job"));

            long late = stack.readAll(stack.config().kafka().deadLettersTopic()).stream()
                    .filter(d -> "late".equals(header(d, DeadLetterSerializer.STAGE))).count();
            Map<String, Oracle.WindowRow> rows = stack.windowRows();
            System.out.printf("%s source: %d late dead letters, window rows %s%n", plain ? "plain Kafka" : "the job's", late, new java.util.TreeMap<>(rows));
            if (plain) {
                assertThat(late).as("late dead letters with Flink's idleness: the scenario reproduces the loss").isPositive();
                continue;
            }
            assertThat(late).as("late dead letters of a backlog read by the job's source").isZero();
            Map<String, Oracle.WindowRow> expected = new HashMap<>();
            for (String user : List.of(first, second)) {
                expected.put(key("app", user, "view", EPOCH), new Oracle.WindowRow(2_400, 2_400.0));
                expected.put(key("app", user, "view", EPOCH + MINUTE), new Oracle.WindowRow(2_400, 2_400.0));
                expected.put(key("app", user, "view", EPOCH + 2 * MINUTE), new Oracle.WindowRow(1_200, 1_200.0));
            }
            TestStack.assertWindowRows(rows, expected, "a backlog read by the job's source");
        }
    }

    /**
     * The other side of the backlog rule: a partition that has nothing to read still goes idle, so the watermark moves.
     * Two partitions, one of them never written; events in the other for three minutes. With one source subtask the
     * empty partition goes idle once the other has delivered and the consumer reports nothing pending; with three, one
     * subtask has no partition at all and must not hold the window operator's watermark either. Each run waits until
     * every window-operator subtask has finalized event time to the last event.
     */
    @Test
    void aPartitionWithNothingToReadAndASubtaskWithoutPartitionsDoNotHoldTheWatermark(TestStack base, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        for (String parallelism : List.of("1", "3")) {
            TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "aggregation.parallelism", parallelism, "aggregation.out-of-orderness", "0s",
                    "aggregation.idleness", "1s", "aggregation.emit-interval", "100ms"));
            List<UserEvent> events = new ArrayList<>();
            for (int i = 0; i < 180; i++) {
                events.add(new UserEvent("app", "u0", "view", EPOCH + i * 1_000L, 1.0, null));
            }
            stack.send(events.toArray(new UserEvent[0]));
            JobClient job = startUnbounded(stack, AggregationJob.sink(stack.config()));
            try {
                awaitFloor(new FlinkRest(cluster.getRestAddress().get()), job, EPOCH + 179_000 - 1);
            } finally {
                job.cancel().get();
            }
        }
    }

    /** The job's own deserializer, ~0.5 ms slower a record: a source task that is busy, not backpressured. */
    private static final class SlowDeserializer implements KafkaRecordDeserializationSchema<Decoded<UserEvent>> {
        private final KafkaRecordDeserializationSchema<Decoded<UserEvent>> inner;

        SlowDeserializer(KafkaRecordDeserializationSchema<Decoded<UserEvent>> inner) {
            this.inner = inner;
        }

        @Override
        public void open(DeserializationSchema.InitializationContext context) throws Exception {
            inner.open(context);
        }

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Decoded<UserEvent>> out) throws IOException {
            java.util.concurrent.locks.LockSupport.parkNanos(500_000);
            inner.deserialize(record, out);
        }

        @Override
        public TypeInformation<Decoded<UserEvent>> getProducedType() {
            return inner.getProducedType();
        }
    }

    private static Map<String, String> floorSettings(String parallelism) {
        return Map.of("kafka.partitions", parallelism, "aggregation.parallelism", parallelism, "aggregation.out-of-orderness", "0s",
                "aggregation.allowed-lateness", "2m", "aggregation.emit-interval", "100ms", "aggregation.idleness", "1s");
    }

    /**
     * u1's purchase in window 0 (value 5.0), then one in window 6 right behind it in u1's partition, usually in the same
     * bundle, so the late one's dead letter must name its own offset. The second is a sentinel: once its push is
     * committed, the late event was processed. Returns every committed push as campaign/user@created_at by then.
     */
    private static List<String> sendLatePurchaseAndSentinel(TestStack stack) throws Exception {
        long sentinelAt = EPOCH + 6 * MINUTE + 1_000;
        stack.send(new UserEvent("app", "u1", "purchase", EPOCH + 2_000, 5.0, null), purchase("u1", sentinelAt));
        return Await.until("the push created at " + sentinelAt, Duration.ofMinutes(2), Duration.ofMillis(300), stack::pushJobs,
                j -> j.stream().anyMatch(p -> p.createdAt() == sentinelAt)).stream().map(p -> p.campaignId() + "/" + p.userId() + "@" + p.createdAt()).toList();
    }

    /** Waits until every window-operator subtask has finalized event time up to {@code floor}. */
    private static void awaitFloor(FlinkRest rest, JobClient job, long floor) throws Exception {
        TestFlink.awaitMetric(rest, job.getJobID().toString(), "detect segment entries", "latenessFloor", "min", v -> v >= floor);
    }

    private static void assertLateDeadLetterAndRowUnchanged(TestStack stack, String offset) throws Exception {
        List<ConsumerRecord<byte[], byte[]>> dead = awaitDeadLetters(stack, 1);
        assertThat(header(dead.get(0), DeadLetterSerializer.STAGE)).isEqualTo("late");
        assertThat(header(dead.get(0), DeadLetterSerializer.REASON)).contains("lateness floor");
        assertThat(header(dead.get(0), DeadLetterSerializer.OFFSET)).isEqualTo(offset);
        assertThat(header(dead.get(0), DeadLetterSerializer.SOURCE_TIMESTAMP)).isEqualTo(String.valueOf(EPOCH + 2_000));
        // the late purchase has value 5.0. A window recreated with it alone (count 1) would not reach the row past the
        // sink's count guard, so the dead letter and the pushes are what show the floor; the row shows nothing was added
        assertThat(stack.windowRows().get(key("app", "u1", "purchase", EPOCH))).as("u1's row of window 0").isEqualTo(new Oracle.WindowRow(1, 1.0));
    }

    /** The newest event time the aggregation job committed from {@code partition} of the events topic, on any shard. */
    private static long newestCommitted(TestStack stack, int partition) throws Exception {
        long newest = 0;
        for (int shard = 0; shard < stack.config().shards().list().size(); shard++) {
            try (var c = stack.shard(shard); var s = c.prepareStatement("SELECT max(newest_event_at) FROM sluice_partition_progress "
                    + "WHERE job = ? AND topic = ? AND source_partition = ?")) {
                s.setString(1, AggregationJob.NAME);
                s.setString(2, stack.config().kafka().userEventsTopic());
                s.setInt(3, partition);
                try (var rs = s.executeQuery()) {
                    rs.next();
                    java.sql.Timestamp t = rs.getTimestamp(1);
                    newest = Math.max(newest, t == null ? 0 : t.getTime());
                }
            }
        }
        return newest;
    }

    private static String restartsOf(FlinkRest rest, JobClient job) throws Exception {
        return Await.until("the job's numRestarts metric", Duration.ofSeconds(30), Duration.ofMillis(200),
                () -> rest.get("/jobs/" + job.getJobID() + "/metrics?get=numRestarts").findValue("value"), v -> v != null).asText();
    }

    /** A user of app whose record key the producer's default partitioner puts in another partition than {@code user}'s. */
    private static String userInOtherPartition(String user, int partitions) {
        int mine = partitionOf(user, partitions);
        for (int i = 0; ; i++) {
            if (partitionOf("v" + i, partitions) != mine) {
                return "v" + i;
            }
        }
    }

    private static int partitionOf(String user, int partitions) {
        byte[] key = UserEvent.keyOf("app", user).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return org.apache.kafka.common.utils.Utils.toPositive(org.apache.kafka.common.utils.Utils.murmur2(key)) % partitions;
    }

    // ---- helpers ----

    /**
     * Two signups of a new user, which enter campaign c2's segment (min_count 2): a positive sentinel. Sent after
     * other events to the one partition, its push is committed only after those events were processed.
     */
    private static long sendSentinel(TestStack stack, String user, long t) throws Exception {
        stack.send(new UserEvent("app", user, "signup", ++t, null, null), new UserEvent("app", user, "signup", ++t, null, null));
        return t;
    }

    /** Committed push jobs as campaign/user, in offset order (one partition). */
    private static List<String> pushes(List<PushJob> jobs) {
        return jobs.stream().map(j -> j.campaignId() + "/" + j.userId()).toList();
    }

    private static UserEvent purchase(String user, long at) {
        return new UserEvent("app", user, "purchase", at, 1.0, null);
    }

    private static String key(String app, String user, String name, long at) {
        return app + "/" + user + "/" + name + "/" + (at - Math.floorMod(at, MINUTE));
    }

    private static Map<String, Oracle.WindowRow> awaitRows(TestStack stack, Predicate<Map<String, Oracle.WindowRow>> done, String what) throws Exception {
        return Await.until(what, Duration.ofMinutes(3), Duration.ofMillis(500), stack::windowRows, done);
    }

    private static List<ConsumerRecord<byte[], byte[]>> awaitDeadLetters(TestStack stack, int n) throws Exception {
        var dead = Await.until(n + " dead letters", Duration.ofMinutes(1), Duration.ofMillis(300),
                () -> stack.readAll(stack.config().kafka().deadLettersTopic()), r -> r.size() >= n);
        assertThat(dead).hasSize(n);
        return dead;
    }

    private static List<PushJob> awaitPushJobs(TestStack stack, int n) throws Exception {
        List<PushJob> jobs;
        try {
            jobs = Await.until(n + " committed push jobs", Duration.ofMinutes(3), Duration.ofMillis(500), stack::pushJobs, j -> j.size() >= n);
        } catch (AssertionError e) { // say why a read_committed consumer sees fewer: an open transaction, or jobs never written
            throw new AssertionError(stack.pushJobs().size() + " of " + n + " push jobs committed; " + io.sluice.testkit.StackProbe.pushQueueState(stack.config()), e);
        }
        assertThat(jobs).hasSizeGreaterThanOrEqualTo(n);
        return jobs;
    }

    private static List<ConsumerRecord<byte[], byte[]>> awaitPushRecords(TestStack stack, int n) throws Exception {
        var records = Await.until(n + " committed push-queue records", Duration.ofMinutes(2), Duration.ofMillis(500),
                () -> stack.readAll(stack.config().kafka().pushQueueTopic()), r -> r.size() >= n);
        assertThat(records).hasSize(n);
        return records;
    }

    /** Waits until every subtask of the segment detector reports {@code value} for the metric. */
    private static void awaitMetric(FlinkRest rest, JobClient job, String metric, double value) throws Exception {
        TestFlink.awaitMetric(rest, job.getJobID().toString(), "detect segment entries", metric, "min", v -> v == value);
    }

    private static void runBounded(TestStack stack) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(500);
        AggregationJob.defineWorkflow(env, stack.config(), AggregationJob.eventSource(stack.config(), true), AggregationJob.campaignSource(stack.config(), true),
                AggregationJob.sink(stack.config()), AggregationJob.pushSink(stack.config()), KafkaIo.deadLetterSink(stack.config()));
        env.execute("aggregation-test");
    }

    private static JobClient startUnbounded(TestStack stack, Sink<WindowCount> rows) throws Exception {
        return startUnbounded(stack, rows, new Configuration());
    }

    private static JobClient startUnbounded(TestStack stack, Sink<WindowCount> rows, Configuration conf) throws Exception {
        return AggregationRuns.start(stack, rows, conf);
    }
}
