package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.testkit.Await;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.util.ExceptionUtils;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static io.sluice.testkit.TestStack.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What the subscription job does when its source or its shards are not what its versions assume: partitions
 * added while it runs, a recreated topic, one subscription in two partitions, aborted upstream transactions, a
 * bad update among good ones, a lock held past the lock timeout, a wrong shard password.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class SourceChangesITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    private static final String APP = "app-1";

    @Test
    void partitionsAddedWhileTheJobRunsStopItNamingTheChangeAndANewEpochAppliesEverything(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "kafka.partition-discovery-interval", "1s",
                "subscriptions.flush-interval", "50ms", "subscriptions.parallelism", "2"));
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        List<SubscriptionUpdate> before = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            before.add(new SubscriptionUpdate("app-" + i, "s", Map.of("n", "1", "before", "yes"), List.of(), 1000 + i));
        }
        JobClient job = SubscriptionRuns.start(stack);
        stack.send(before.toArray(new SubscriptionUpdate[0]));
        stack.awaitSubscriptionRows(rows(before, Map.of("n", "1", "before", "yes")), 60_000);
        // drained: the committed offsets cover every update sent before the change (the planned procedure's first step)
        try (StackProbe probe = new StackProbe(stack.config())) {
            Await.until("the job's committed offsets to reach the end of " + topic, Duration.ofSeconds(30),
                    () -> probe.messageLag(io.sluice.core.kafka.KafkaClients.groupId(stack.config(), SubscriptionJob.NAME), topic), lag -> lag == 0);
        }

        try (Admin admin = Admin.create(io.sluice.core.kafka.KafkaClients.clientProperties(stack.config()))) {
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(8))).all().get();
        }
        // producers that know the new count: apps move to new partitions, and their offsets start at 0 there
        List<SubscriptionUpdate> after = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            after.add(new SubscriptionUpdate("app-" + i, "s", Map.of("n", "2"), List.of("before"), 5000 + i));
        }
        stack.send(after.toArray(new SubscriptionUpdate[0]));
        String failure = awaitFailure(job, Duration.ofSeconds(30));
        assertThat(failure).contains(SuppressRestartsException.class.getName())
                .contains("topic " + topic + " has 8 partitions, but source epoch 0 was recorded with 2")
                .contains("subscriptions.source-epoch=1").contains("docs/operations.md#adding-partitions");

        // the documented procedure: start again in epoch 1. Every row before the change was written (above), so the sink held
        // none and a start without state from the committed offsets loses nothing: it applies every update
        TestStack restarted = stack.with(Map.of("subscriptions.allow-stateless-start", "true"));
        JobClient again = SubscriptionRuns.start(restarted.with(Map.of("subscriptions.source-epoch", "1")));
        try {
            Map<String, Map<String, String>> expected = rows(after, Map.of("n", "2"));
            TestStack.assertSubscriptionRows(stack.awaitSubscriptionRows(expected, 60_000), expected, "after epoch 1 started");
            assertThat(stack.readAll(stack.config().kafka().deadLettersTopic())).as("dead letters").isEmpty();
        } finally {
            again.cancel().get();
        }
        // an older epoch is refused once a newer one has been recorded
        String stale = awaitFailure(SubscriptionRuns.start(restarted), Duration.ofSeconds(30));
        assertThat(stale).contains("subscriptions.source-epoch is 0 but a shard already recorded epoch 1");
    }

    @Test
    void aRecreatedTopicIsRefusedUntilTheEpochIsRaisedThenItsUpdatesWin(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1"));
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        List<SubscriptionUpdate> old = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            old.add(new SubscriptionUpdate(APP, "s", Map.of("v", "old-" + i), List.of(), 1000 + i));
        }
        stack.send(old.toArray(new SubscriptionUpdate[0]));
        SubscriptionRuns.runBounded(stack);
        assertThat(stack.subscriptionRows().get(APP + "/s")).containsExactly(Map.entry("v", "old-19"));

        try (Admin admin = Admin.create(io.sluice.core.kafka.KafkaClients.clientProperties(stack.config()))) {
            admin.deleteTopics(List.of(topic)).all().get();
            Await.until("topic " + topic + " to be gone", Duration.ofSeconds(30), () -> admin.listTopics().names().get().contains(topic), there -> !there);
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        }
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("v", "new"), List.of(), 9000)); // offset 0 of the new topic

        assertThatThrownBy(() -> SubscriptionRuns.runBounded(stack)).satisfies(e -> assertThat(ExceptionUtils.stringifyException(e))
                .contains("topic " + topic + " is not the topic source epoch 0 was recorded with")
                .contains("subscriptions.source-epoch=1").contains("docs/operations.md#recreating-or-mirroring-the-topic"));
        assertThat(stack.subscriptionRows().get(APP + "/s")).as("refused, not skipped").containsExactly(Map.entry("v", "old-19"));

        SubscriptionRuns.runBounded(stack.with(Map.of("subscriptions.source-epoch", "1")));
        assertThat(stack.subscriptionRows().get(APP + "/s")).as("offset 0 of epoch 1 wins over offset 19 of epoch 0")
                .containsExactly(Map.entry("v", "new"));
    }

    @Test
    void aTopicRecreatedWhileTheJobRunsStopsItBeforeAnyCheckpointHoldsTheNewTopicsOffsets(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "subscriptions.flush-interval", "50ms"));
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        JobClient job = SubscriptionRuns.start(stack);
        List<SubscriptionUpdate> old = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            old.add(new SubscriptionUpdate(APP, "s", Map.of("v", "old-" + i), List.of(), 1000 + i));
        }
        stack.send(old.toArray(new SubscriptionUpdate[0]));
        stack.awaitSubscriptionRows(Map.of(APP + "/s", Map.of("v", "old-19")), 60_000);
        try (Admin admin = Admin.create(io.sluice.core.kafka.KafkaClients.clientProperties(stack.config()))) {
            admin.deleteTopics(List.of(topic)).all().get();
            Await.until("topic " + topic + " to be gone", Duration.ofSeconds(30), () -> admin.listTopics().names().get().contains(topic), there -> !there);
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        }
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("v", "new"), List.of(), 9000));
        String failure = awaitFailure(job, Duration.ofSeconds(60));
        assertThat(failure).contains(SuppressRestartsException.class.getName())
                .contains("topic " + topic + " is not the topic source epoch 0 was recorded with").contains("subscriptions.source-epoch=1");
        assertThat(stack.subscriptionRows().get(APP + "/s")).containsExactly(Map.entry("v", "old-19"));
    }

    @Test
    void aSecondPartitionForOneSubscriptionIsAValidateDeadLetterAndTheRowKeepsItsValue(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "2"));
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("k1", "a"), List.of(), 1000)); // keyed by app_id: the Java partitioner's partition
        SubscriptionRuns.runBounded(stack);
        int home = stack.readAll(topic).get(0).partition();
        int other = 1 - home;
        try (KafkaProducer<byte[], byte[]> p = stack.producer(Map.of())) {
            // a producer with another partitioner (librdkafka's CRC-32, say) puts the same app into the other partition
            p.send(new ProducerRecord<>(topic, other, bytes(APP), stack.encode(new SubscriptionUpdate(APP, "s", Map.of("k1", "b"), List.of(), 2000)))).get();
            // a key that is not the app_id, in the subscription's own partition: applied (only the partition matters)
            p.send(new ProducerRecord<>(topic, home, bytes("not-the-app"), stack.encode(new SubscriptionUpdate(APP, "s", Map.of("k2", "c"), List.of(), 3000)))).get();
        }
        SubscriptionRuns.runBounded(stack);
        assertThat(stack.subscriptionRows().get(APP + "/s")).containsOnly(Map.entry("k1", "a"), Map.entry("k2", "c"));
        List<ConsumerRecord<byte[], byte[]>> dead = stack.readAll(stack.config().kafka().deadLettersTopic());
        assertThat(dead).hasSize(1);
        assertThat(header(dead.get(0), DeadLetterSerializer.STAGE)).isEqualTo("validate");
        assertThat(header(dead.get(0), DeadLetterSerializer.PARTITION)).isEqualTo(String.valueOf(other));
        assertThat(header(dead.get(0), DeadLetterSerializer.REASON)).contains("was written from partition " + home)
                .contains("this update came from partition " + other).contains("offsets 0..0 of partition " + other);
    }

    @Test
    void recordsOfAnAbortedUpstreamTransactionAreNotApplied(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1"));
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        try (KafkaProducer<byte[], byte[]> p = stack.producer(Map.of("transactional.id", topic + "-upstream"))) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, bytes(APP), stack.encode(new SubscriptionUpdate(APP, "s", Map.of("state", "aborted"), List.of(), 1000))));
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, bytes(APP), stack.encode(new SubscriptionUpdate(APP, "s2", Map.of("state", "committed"), List.of(), 2000))));
            p.commitTransaction();
        }
        SubscriptionRuns.runBounded(stack);
        assertThat(stack.subscriptionRows()).containsOnlyKeys(APP + "/s2");
    }

    @Test
    void aBadUpdateBetweenTwoGoodOnesIsADeadLetterWithItsOwnBytesAndTheGoodOnesApply(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "subscriptions.flush-max-rows", "100000", "subscriptions.flush-interval", "10m"));
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("k1", "a"), List.of(), 1000),
                new SubscriptionUpdate(APP, "s", Map.of("bad", "nul\0inside"), List.of(), 2000),
                new SubscriptionUpdate(APP, "s", Map.of("k2", "b"), List.of(), 3000));
        SubscriptionRuns.runBounded(stack);
        assertThat(stack.subscriptionRows().get(APP + "/s")).containsOnly(Map.entry("k1", "a"), Map.entry("k2", "b"));
        List<ConsumerRecord<byte[], byte[]>> dead = stack.readAll(stack.config().kafka().deadLettersTopic());
        assertThat(dead).hasSize(1);
        ConsumerRecord<byte[], byte[]> bad = stack.readAll(stack.config().kafka().subscriptionUpdatesTopic()).get(1);
        assertThat(header(dead.get(0), DeadLetterSerializer.STAGE)).isEqualTo("validate");
        assertThat(header(dead.get(0), DeadLetterSerializer.OFFSET)).isEqualTo("1");
        assertThat(header(dead.get(0), DeadLetterSerializer.REASON)).isEqualTo("value of set.'bad' contains a NUL character, which Postgres jsonb cannot hold");
        assertThat(dead.get(0).value()).as("the original bytes").isEqualTo(bad.value());
    }

    @Test
    void aLockHeldPastTheLockTimeoutIsRetriedAndTheJobCompletes(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1", "shards.lock-timeout", "300ms", "subscriptions.flush-interval", "50ms",
                "subscriptions.parallelism", "1"));
        JobClient job = SubscriptionRuns.start(stack);
        try {
            stack.send(new SubscriptionUpdate(APP, "s", Map.of("n", "1"), List.of(), 1000));
            stack.awaitSubscriptionRows(Map.of(APP + "/s", Map.of("n", "1")), 60_000);
            int shard = stack.config().router().shardOf(APP);
            try (Connection locker = stack.shard(shard)) {
                locker.setAutoCommit(false);
                try (Statement st = locker.createStatement()) {
                    // the job's progress rows on that shard: every batch of this writer updates them
                    st.executeQuery("SELECT * FROM sluice_progress WHERE job = 'subscriptions' FOR UPDATE").close();
                }
                stack.send(new SubscriptionUpdate(APP, "s", Map.of("n", "2"), List.of(), 2000));
                TestFlink.awaitMetric(new FlinkRest(cluster.getRestAddress().get()), job.getJobID().toString(), "upsert into shards",
                        "shard." + shard + ".retries", "sum", r -> r >= 1);
                assertThat(stack.subscriptionRows().get(APP + "/s")).as("still locked").containsExactly(Map.entry("n", "1"));
                locker.rollback();
            }
            stack.awaitSubscriptionRows(Map.of(APP + "/s", Map.of("n", "2")), 60_000);
        } finally {
            job.cancel().get();
        }
    }

    @Test
    void aWrongShardPasswordStopsTheJobWithinSecondsNamingTheShard(TestStack base) throws Exception {
        TestStack open = base.fresh(Map.of("kafka.partitions", "1"));
        open.stack().postgres.addPasswordRole("sluice_pw", "right-password");
        String url = open.config().shards().list().get(0).jdbcUrl();
        DriverManager.getConnection(url, "sluice_pw", "right-password").close(); // the role and its scram-sha-256 line work
        assertThatThrownBy(() -> DriverManager.getConnection(url, "sluice_pw", "wrong-password")).hasMessageContaining("password authentication failed");

        TestStack stack = open.with(Map.of("shards.user", "sluice_pw", "shards.password", "wrong-password"));
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("n", "1"), List.of(), 1000));
        long t0 = System.currentTimeMillis();
        String failure = awaitFailure(SubscriptionRuns.start(stack), Duration.ofSeconds(30));
        assertThat(System.currentTimeMillis() - t0).as("ms to stop").isLessThan(30_000);
        assertThat(failure).contains(SuppressRestartsException.class.getName()).contains("shard 0: ")
                .contains("password authentication failed").contains("No retry can fix this: check shards.user and shards.password")
                .doesNotContain("wrong-password");
    }

    private static Map<String, Map<String, String>> rows(List<SubscriptionUpdate> updates, Map<String, String> value) {
        Map<String, Map<String, String>> rows = new java.util.TreeMap<>();
        updates.forEach(u -> rows.put(u.appId() + "/" + u.subscriptionId(), value));
        return rows;
    }

    /** Waits for the job to end and returns its failure with every cause; fails if it ends otherwise or runs longer. */
    private static String awaitFailure(JobClient job, Duration within) throws Exception {
        try {
            job.getJobExecutionResult().get(within.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            return ExceptionUtils.stringifyException(e);
        } catch (java.util.concurrent.TimeoutException e) {
            job.cancel().get();
            throw new AssertionError("the job was still running after " + within + " (status " + job.getJobStatus().get() + ")");
        }
        throw new AssertionError("the job finished without failing");
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
