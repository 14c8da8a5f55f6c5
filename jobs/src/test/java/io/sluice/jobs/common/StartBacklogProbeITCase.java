package io.sluice.jobs.common;

import io.sluice.core.kafka.KafkaClients;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link StartBacklogProbe} on a real broker: what a reader that has delivered nothing yet would find from where it
 * starts. The case that matters most is the last: a partition whose tail is an aborted transaction and a committed
 * one's marker holds offsets a {@code read_committed} reader never delivers, so its last stable offset is past the
 * reader's position, and only reading tells that nothing is there.
 */
@ExtendWith(SluiceStackExtension.class)
class StartBacklogProbeITCase {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @Test
    void findsRecordsOnlyWhereAReadCommittedReaderWouldGetThem(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "2"));
        String topic = stack.config().kafka().userEventsTopic();
        var client = KafkaClients.clientProperties(stack.config());
        String group = KafkaClients.groupId(stack.config(), "probe-test");
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);

        assertThat(probe(client, group, split(p0, 0), split(p1, 0)))
                .as("two empty partitions from offset 0").isFalse();
        assertThat(probe(client, group, split(p0, KafkaPartitionSplit.EARLIEST_OFFSET)))
                .as("an empty partition from the earliest offset").isFalse();

        try (KafkaProducer<byte[], byte[]> plain = stack.producer(Map.of())) {
            for (int i = 0; i < 3; i++) {
                plain.send(new ProducerRecord<>(topic, 1, null, new byte[]{(byte) i})).get();
            }
        }
        assertThat(probe(client, group, split(p0, 0), split(p1, 0)))
                .as("three records in partition 1 from offset 0").isTrue();
        assertThat(probe(client, group, split(p0, 0), split(p1, 2)))
                .as("partition 1 from its last record").isTrue();
        assertThat(probe(client, group, split(p0, 0), split(p1, 3)))
                .as("partition 1 from past its last record").isFalse();
        assertThat(probe(client, group, split(p1, KafkaPartitionSplit.LATEST_OFFSET)))
                .as("partition 1 from the latest offset").isFalse();

        try (KafkaProducer<byte[], byte[]> tx = stack.producer(Map.of("transactional.id", group + "-tx"))) {
            tx.initTransactions();
            tx.beginTransaction();
            tx.send(new ProducerRecord<>(topic, 1, null, new byte[]{9})).get();
            tx.send(new ProducerRecord<>(topic, 1, null, new byte[]{9})).get();
            tx.abortTransaction();
            tx.beginTransaction();
            tx.send(new ProducerRecord<>(topic, 0, null, new byte[]{8})).get();
            tx.commitTransaction();
        }
        // partition 1: offsets 3 and 4 aborted, 5 the abort marker; partition 0: offset 0 committed, 1 the commit marker
        assertThat(probe(client, group, split(p0, 1), split(p1, 3)))
                .as("an aborted transaction and a commit marker, past the last committed records").isFalse();
        assertThat(probe(client, group, split(p0, 0), split(p1, 3)))
                .as("the committed transaction's record").isTrue();
    }

    private static boolean probe(java.util.Properties client, String group, KafkaPartitionSplit... splits) {
        return StartBacklogProbe.hasRecordsToRead(client, group, group + "-probe", List.of(splits), TIMEOUT);
    }

    private static KafkaPartitionSplit split(TopicPartition tp, long start) {
        return new KafkaPartitionSplit(tp, start);
    }
}
