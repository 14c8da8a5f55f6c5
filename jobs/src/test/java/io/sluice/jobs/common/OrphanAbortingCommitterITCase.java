package io.sluice.jobs.common;

import io.sluice.core.kafka.KafkaClients;
import io.sluice.testkit.Await;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.TestStack;
import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.connector.kafka.sink.KafkaCommittable;
import org.apache.flink.connector.kafka.sink.internal.FlinkKafkaInternalProducer;
import org.apache.flink.connector.kafka.sink.internal.KafkaCommitter;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * FLINK-40626 on a real broker, with the connector's own committer: a restored commit of a transaction that was
 * committed before the failure, whose id a newer, still open transaction reuses. The connector alone is fenced and
 * leaves that transaction open, holding back {@code read_committed} consumers until the transaction timeout; so does
 * Sluice's committer outside a restore; at a restore it aborts it.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class OrphanAbortingCommitterITCase {

    @Test
    void aFencedRestoredCommitAbortsTheNewerTransactionThatHeldBackReadCommittedConsumers(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1"));
        String topic = stack.config().kafka().pushQueueTopic();
        TopicPartition partition = new TopicPartition(topic, 0);
        Properties p = KafkaClients.clientProperties(stack.config());
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("transaction.timeout.ms", "600000");
        String id = "sluice-test-push-0-1";

        // before the failure: checkpoint n's transaction is prepared (what the checkpoint keeps of it) and then committed;
        // the pool hands its id to the next checkpoint's transaction, which writes and is open when the job dies
        FlinkKafkaInternalProducer<byte[], byte[]> writer = new FlinkKafkaInternalProducer<>(p, id);
        try {
            writer.initTransactions();
            writer.beginTransaction();
            writer.send(new ProducerRecord<>(topic, bytes("committed before the failure")), null);
            writer.flush();
            KafkaCommittable restored = new KafkaCommittable(writer.getProducerId(), writer.getEpoch(), id, null);
            writer.commitTransaction();
            writer.beginTransaction();
            writer.send(new ProducerRecord<>(topic, bytes("written after the checkpoint, never committed")), null);
            writer.flush();
            assertThat(heldBack(stack, partition)).as("the open transaction holds back read_committed consumers").isTrue();

            KafkaCommitter connector = new KafkaCommitter(p, "sluice-test-push", 0, 0, true,
                    (props, transactionalId) -> new FlinkKafkaInternalProducer<byte[], byte[]>(props, transactionalId));
            try {
                // the connector alone: fenced, and the transaction stays open
                Request alone = new Request(restored);
                connector.commit(List.of(alone));
                assertThat(alone.knownFailure).as("the connector's restored commit").isInstanceOf(ProducerFencedException.class);
                assertThat(heldBack(stack, partition)).as("after the connector's restored commit, the partition is still held back").isTrue();

                // Sluice's committer outside a restore (a committer created without restored state) leaves it too
                Request notRestoring = new Request(restored);
                new OrphanAbortingCommitter(connector, p, () -> false).commit(List.of(notRestoring));
                assertThat(notRestoring.knownFailure).isInstanceOf(ProducerFencedException.class);
                assertThat(heldBack(stack, partition)).as("a fenced commit outside a restore aborts nothing").isTrue();

                // Sluice's committer at a restore: the first commit, of the restored transaction, aborts the orphan
                Request withSluice = new Request(restored);
                new OrphanAbortingCommitter(connector, p, () -> true).commit(List.of(withSluice));
                assertThat(withSluice.knownFailure).isInstanceOf(ProducerFencedException.class);
                Await.until("the partition's last stable offset at its high watermark, " + StackProbe.pushQueueState(stack.config()),
                        Duration.ofSeconds(30), () -> heldBack(stack, partition), held -> !held);
                assertThat(stack.readAll(topic)).extracting(r -> new String(r.value(), StandardCharsets.UTF_8))
                        .containsExactly("committed before the failure");

                // with nothing open on the id, a fenced restored commit (every one of a transaction committed before the failure,
                // with transaction version 2) leaves the id alone: its epoch stays
                int epoch = describe(stack, id).producerEpoch();
                Request again = new Request(restored);
                new OrphanAbortingCommitter(connector, p, () -> true).commit(List.of(again));
                assertThat(again.knownFailure).isInstanceOf(ProducerFencedException.class);
                assertThat(describe(stack, id).producerEpoch()).as("the epoch of an id with nothing open").isEqualTo(epoch);
            } finally {
                connector.close();
            }
        } finally {
            writer.close(Duration.ZERO);
        }
    }

    /** Whether the partition's last stable offset is behind its high watermark: an open transaction wrote there. */
    private static boolean heldBack(TestStack stack, TopicPartition partition) throws Exception {
        try (Admin admin = Admin.create(KafkaClients.adminProperties(KafkaClients.clientProperties(stack.config())))) {
            long stable = admin.listOffsets(Map.of(partition, OffsetSpec.latest()), new ListOffsetsOptions(IsolationLevel.READ_COMMITTED))
                    .partitionResult(partition).get(10, TimeUnit.SECONDS).offset();
            long high = admin.listOffsets(Map.of(partition, OffsetSpec.latest()), new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED))
                    .partitionResult(partition).get(10, TimeUnit.SECONDS).offset();
            return stable < high;
        }
    }

    private static TransactionDescription describe(TestStack stack, String transactionalId) throws Exception {
        try (Admin admin = Admin.create(KafkaClients.adminProperties(KafkaClients.clientProperties(stack.config())))) {
            return admin.describeTransactions(List.of(transactionalId)).description(transactionalId).get(10, TimeUnit.SECONDS);
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** A commit request as Flink's committer operator hands one over, recording how it ended. */
    private static final class Request implements Committer.CommitRequest<KafkaCommittable> {
        private final KafkaCommittable committable;
        Throwable knownFailure;

        Request(KafkaCommittable committable) {
            this.committable = committable;
        }

        @Override
        public KafkaCommittable getCommittable() {
            return committable;
        }

        @Override
        public int getNumberOfRetries() {
            return 0;
        }

        @Override
        public void signalFailedWithKnownReason(Throwable t) {
            knownFailure = t;
        }

        @Override
        public void signalFailedWithUnknownReason(Throwable t) {
            throw new AssertionError("the commit failed for an unknown reason", t);
        }

        @Override
        public void retryLater() {
            throw new AssertionError("the commit asked to be retried");
        }

        @Override
        public void updateAndRetryLater(KafkaCommittable c) {
            throw new AssertionError("the commit asked to be retried with " + c);
        }

        @Override
        public void signalAlreadyCommitted() {
            throw new AssertionError("the commit was reported as done before");
        }
    }
}
