package io.sluice.jobs.subscriptions;

import io.sluice.core.kafka.KafkaClients;
import io.sluice.core.model.SubscriptionUpdate;
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
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.testutils.junit.SharedObjectsExtension;
import org.apache.flink.testutils.junit.SharedReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.sql.Connection;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static io.sluice.testkit.Await.until;
import static io.sluice.testkit.Faults.killConnections;
import static io.sluice.testkit.TestStack.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES) // a job that never converges fails instead of hanging CI
class SubscriptionJobITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    /** What a test and its job in the MiniCluster share (the injected fault), per test. */
    @RegisterExtension
    final SharedObjectsExtension shared = SharedObjectsExtension.create();

    @Test
    void eightToTenThenEightToTwentyEndsAsTwentyInOneFlushAndInSeparateFlushes(TestStack base) throws Exception {
        for (String flushMaxRows : List.of("100000", "1")) { // one flush holds both updates / every update is its own flush
            TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "subscriptions.flush-max-rows", flushMaxRows,
                    "subscriptions.flush-interval", "10m", "subscriptions.parallelism", "4"));
            List<SubscriptionUpdate> updates = new ArrayList<>();
            updates.add(new SubscriptionUpdate("app-1", "device-8", Map.of("level", "10"), List.of(), 1000));
            for (int i = 0; i < 50; i++) { // other subscriptions in between, on both partitions
                updates.add(new SubscriptionUpdate("app-" + (i % 7), "other-" + i, Map.of("level", "1"), List.of(), 1001 + i));
            }
            updates.add(new SubscriptionUpdate("app-1", "device-8", Map.of("level", "20"), List.of(), 2000));
            stack.send(updates.toArray(new SubscriptionUpdate[0]));
            SubscriptionRuns.runBounded(stack);
            Map<String, String> row = stack.subscriptionRows().get("app-1/device-8");
            assertThat(row).as("flush-max-rows " + flushMaxRows).containsExactly(Map.entry("level", "20"));
        }
    }

    /**
     * Both topologies: no shuffle (the default; 2 subtasks read 4 partitions) and {@code subscriptions.key-by} with more
     * subtasks than partitions (4 on 2), where only the shuffle gives every subtask rows to write: the progress rows
     * name which sink writers committed.
     */
    @ParameterizedTest(name = "key-by {0}, parallelism {1}, {2} partitions")
    @CsvSource({"false, 2, 4", "true, 4, 2"})
    void aSkewedRunWithAHotKeyAndMalformedRecordsEqualsTheOracle(boolean keyBy, int parallelism, int partitions, TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.count", "110000", "generator.update-fraction", "1", "generator.apps", "40",
                "generator.subscriptions-per-app", "2000", "generator.hot-key", "true", "generator.malformed-fraction", "0.01",
                "subscriptions.parallelism", String.valueOf(parallelism), "subscriptions.key-by", String.valueOf(keyBy),
                "kafka.partitions", String.valueOf(partitions)));
        Oracle oracle;
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 0, 1_700_000_000_000L, false).start()) {
            oracle = g.awaitDone().oracle();
        }
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        assertThat(oracle.good(topic)).isGreaterThanOrEqualTo(100_000);
        assertThat(oracle.subscriptions()).hasSizeGreaterThanOrEqualTo(10_000);

        SubscriptionRuns.runBounded(stack);

        Map<String, Map<String, String>> actual = stack.subscriptionRows();
        Map<String, Map<String, String>> expected = TestStack.expectedRows(oracle);
        assertThat(actual.keySet()).isEqualTo(expected.keySet());
        for (var e : expected.entrySet()) {
            assertThat(actual.get(e.getKey())).as(e.getKey()).isEqualTo(e.getValue());
        }
        // every row sits on the shard the router names
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery("SELECT DISTINCT app_id FROM subscriptions")) {
                while (rs.next()) {
                    assertThat(stack.config().router().shardOf(rs.getString(1))).isEqualTo(shard);
                }
            }
        }
        // every malformed record is a dead letter with its source and a reason; nothing else is
        List<ConsumerRecord<byte[], byte[]>> dead = stack.readAll(stack.config().kafka().deadLettersTopic());
        assertThat(dead).hasSize((int) oracle.malformed(topic));
        for (ConsumerRecord<byte[], byte[]> d : dead) {
            assertThat(header(d, DeadLetterSerializer.TOPIC)).isEqualTo(topic);
            assertThat(header(d, DeadLetterSerializer.STAGE)).isEqualTo("decode");
            assertThat(header(d, DeadLetterSerializer.REASON)).matches("(not-wire-format|unknown-schema-id|undecodable): .+");
            assertThat(Long.parseLong(header(d, DeadLetterSerializer.OFFSET))).isNotNegative();
        }
        // the committed count is the source position: per partition the newest good record's offset + 1, summed
        Map<Integer, java.util.Set<Long>> deadOffsets = new java.util.HashMap<>();
        for (ConsumerRecord<byte[], byte[]> d : dead) {
            deadOffsets.computeIfAbsent(Integer.parseInt(header(d, DeadLetterSerializer.PARTITION)), k -> new java.util.HashSet<>())
                    .add(Long.parseLong(header(d, DeadLetterSerializer.OFFSET)));
        }
        Map<Integer, Long> newestGood = new java.util.HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : stack.readAll(topic)) {
            if (!deadOffsets.getOrDefault(r.partition(), java.util.Set.of()).contains(r.offset())) {
                newestGood.merge(r.partition(), r.offset(), Math::max);
            }
        }
        long position = newestGood.values().stream().mapToLong(o -> o + 1).sum();
        assertThat(position).as("source position").isGreaterThanOrEqualTo(oracle.good(topic));
        try (StackProbe probe = new StackProbe(stack.config())) {
            assertThat(probe.jobProgress().getOrDefault(SubscriptionJob.NAME, new long[2])[0]).as("committed count").isEqualTo(position);
        }
        java.util.Set<Integer> writers = new java.util.HashSet<>();
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery(
                    "SELECT DISTINCT writer FROM sluice_progress WHERE job = '" + SubscriptionJob.NAME + "'")) {
                while (rs.next()) {
                    writers.add(rs.getInt(1));
                }
            }
        }
        assertThat(writers).as("sink writers that committed rows (subtask x shards.max-connections + slot)")
                .hasSize(Math.min(parallelism, keyBy ? parallelism : partitions));
    }

    @Test
    void aRowTheShardRejectsGoesAloneToDeadLettersAndItsNeighboursAreWritten(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("subscriptions.flush-interval", "10m", "subscriptions.parallelism", "1"));
        // what validation cannot know: a constraint added to the shards by hand
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard)) {
                c.createStatement().execute("ALTER TABLE subscriptions ADD CONSTRAINT no_blocked_key CHECK (NOT properties ? 'blocked')");
            }
        }
        List<SubscriptionUpdate> updates = new ArrayList<>();
        for (int i = 0; i < 300; i++) { // one flush on each shard, with one row the shard refuses
            String key = i == 137 ? "blocked" : "k";
            updates.add(new SubscriptionUpdate("app-" + (i % 5), "device-" + i, Map.of(key, "v" + i), List.of(), 1000 + i));
        }
        stack.send(updates.toArray(new SubscriptionUpdate[0]));
        SubscriptionRuns.runBounded(stack);

        Map<String, Map<String, String>> rows = stack.subscriptionRows();
        assertThat(rows).hasSize(299).doesNotContainKey("app-2/device-137");
        assertThat(rows.get("app-3/device-138")).containsExactly(Map.entry("k", "v138"));
        List<ConsumerRecord<byte[], byte[]>> dead = stack.readAll(stack.config().kafka().deadLettersTopic());
        assertThat(dead).hasSize(1);
        ConsumerRecord<byte[], byte[]> d = dead.get(0);
        assertThat(header(d, DeadLetterSerializer.STAGE)).isEqualTo("shard-write");
        int shard = stack.config().router().shardOf("app-2");
        assertThat(header(d, DeadLetterSerializer.REASON)).startsWith("shard " + shard + " rejected the row: ").contains("SQLSTATE 23514")
                .contains("no_blocked_key").endsWith("offsets " + header(d, DeadLetterSerializer.OFFSET) + ".." + header(d, DeadLetterSerializer.OFFSET)
                        + " of partition " + header(d, DeadLetterSerializer.PARTITION) + " (1 updates)");
        assertThat(header(d, DeadLetterSerializer.TOPIC)).isEqualTo(stack.config().kafka().subscriptionUpdatesTopic());
        assertThat(new String(d.key())).isEqualTo("app-2");
        assertThat(new String(d.value())).contains("\"subscription_id\":\"device-137\"");
    }

    @Test
    void withAnOperatorThrowingATaskManagerLostAndShardConnectionsKilledTheRowsStillEqualTheOracleAndNeverMoveBackwards(
            TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.count", "110000", "generator.update-fraction", "1", "generator.apps", "40",
                "generator.subscriptions-per-app", "2000", "generator.hot-key", "true", "subscriptions.parallelism", "2",
                // small flushes, so a replay after a restore is written in many batches, each older than what the shard
                // already holds: without the version guard the sampled reads see rows move backwards
                "subscriptions.flush-interval", "200ms", "subscriptions.flush-max-rows", "200"));
        SharedReference<Faults.ThrowOnce> fault = shared.add(new Faults.ThrowOnce(15_000));
        JobClient job = SubscriptionRuns.start(stack, new Faults.ThrowOnceSink<>(SubscriptionJob.sink(stack.config()), fault));
        List<String> injected = new ArrayList<>();
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 5_000, 1_700_000_000_000L, false).start();
             ReadSampler sampler = new ReadSampler(stack, List.of(RecordSequence.appId(1), RecordSequence.appId(7)),
                     "SELECT subscription_id, version, properties::text FROM subscriptions WHERE app_id = ?")) {
            // 1: the sink operator throws after 15,000 rows (the job restarts from its last checkpoint)
            until("the sink to throw once", Duration.ofMinutes(2), () -> fault.get().thrown());
            injected.add("sink threw after 15,000 rows at " + g.acked() + " records sent");
            // 2: the TaskManager is lost and a new one joins (every task restarts from the last checkpoint)
            until("45,000 records sent", Duration.ofMinutes(2), () -> g.acked() >= 45_000);
            cluster.terminateTaskManager(0).get();
            cluster.startTaskManager();
            injected.add("task manager replaced at " + g.acked() + " records sent");
            // 3, 4: every connection to both shards killed while batches flow (the sink retries, no restart)
            for (long at : new long[] {75_000, 95_000}) {
                until(at + " records sent", Duration.ofMinutes(2), () -> g.acked() >= at);
                int killed = killConnections(stack, 0) + killConnections(stack, 1);
                assertThat(killed).as("the sink's shard connections killed").isPositive();
                injected.add(killed + " sink connections killed at " + g.acked() + " records sent");
            }
            Oracle oracle = g.awaitDone().oracle();
            Map<String, Map<String, String>> expected = TestStack.expectedRows(oracle);
            Map<String, Map<String, String>> actual = stack.awaitSubscriptionRows(expected, 180_000);
            TestStack.assertSubscriptionRows(actual, expected, injected.toString());
            sampler.assertNoRowMovedBackwards();
        } finally {
            fault.get().disarm();
            job.cancel().get();
        }
    }

    /**
     * The job runs and commits offsets, then is submitted again without its state (lost checkpoints, a second docker-compose
     * setup, a cancel and a plain resubmit): refused at once, naming the group and the fix, with no restart loop, since the
     * sink's state may hold updates a shard had not committed, which the group's offsets are past. With
     * subscriptions.allow-stateless-start it starts.
     */
    @Test
    void aStartWithoutStateWhereTheGroupHasCommittedOffsetsIsRefusedUnlessAllowed(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "subscriptions.parallelism", "1"));
        JobClient first = SubscriptionRuns.start(stack);
        String group = KafkaClients.groupId(stack.config(), SubscriptionJob.NAME);
        try (Admin admin = Admin.create(KafkaClients.clientProperties(stack.config()))) {
            stack.send(new SubscriptionUpdate("app-1", "device-1", Map.of("level", "1"), List.of(), 1000));
            until("offsets committed for group " + group, Duration.ofMinutes(1), Duration.ofMillis(300),
                    () -> admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(), m -> !m.isEmpty());
        } finally {
            first.cancel().get();
        }
        JobClient second = SubscriptionRuns.start(stack);
        assertThatThrownBy(() -> second.getJobExecutionResult().get(60, TimeUnit.SECONDS)).as("refused, not restarted over and over")
                .hasStackTraceContaining("the subscriptions job starts without a checkpoint or savepoint, but its consumer group " + group
                        + " has committed offsets for 1 partitions")
                .hasStackTraceContaining("would never be written")
                .hasStackTraceContaining("subscriptions.allow-stateless-start");
        TestStack allowed = stack.with(Map.of("subscriptions.allow-stateless-start", "true"));
        JobClient third = SubscriptionRuns.start(allowed);
        try {
            allowed.send(new SubscriptionUpdate("app-1", "device-2", Map.of("level", "2"), List.of(), 2000));
            until("the allowed stateless start writing device-2", Duration.ofMinutes(1), Duration.ofMillis(200),
                    allowed::subscriptionRows, rows -> rows.containsKey("app-1/device-2"));
        } finally {
            third.cancel().get();
        }
    }

    @Test
    void aShardStoppedForSecondsMidRunLosesNothing(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.count", "40000", "generator.update-fraction", "1", "generator.apps", "40",
                "generator.subscriptions-per-app", "500", "subscriptions.parallelism", "2", "subscriptions.flush-interval", "200ms"));
        JobClient job = SubscriptionRuns.start(stack, SubscriptionJob.sink(stack.config()));
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 4_000, 1_700_000_000_000L, false).start()) {
            until("10,000 records sent", Duration.ofMinutes(2), () -> g.acked() >= 10_000);
            stack.stack().postgres.stop(1);
            long stoppedAt = g.acked();
            // the outage lasts 16,000 sent records (about 4 s at 4,000/s: several of the sink's retries), of the 40,000
            Await.until("16,000 records sent while shard 1 is down", Duration.ofMinutes(1), () -> g.acked() - stoppedAt, n -> n >= 16_000);
            stack.stack().postgres.restart(1);
            Oracle oracle = g.awaitDone().oracle();
            assertThat(g.acked() - stoppedAt).as("records sent while shard 1 was down").isGreaterThan(10_000);
            Map<String, Map<String, String>> expected = TestStack.expectedRows(oracle);
            TestStack.assertSubscriptionRows(stack.awaitSubscriptionRows(expected, 120_000), expected, "shard 1 down for 16,000 records");
        } finally {
            job.cancel().get();
        }
    }

}
