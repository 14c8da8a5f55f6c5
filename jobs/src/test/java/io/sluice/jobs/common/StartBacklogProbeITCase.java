package io.sluice.jobs.common;

import io.sluice.core.kafka.KafkaClients;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplit;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

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
                .as("two empty partitions from offset 0").isEmpty();
        assertThat(probe(client, group, split(p0, KafkaPartitionSplit.EARLIEST_OFFSET)))
                .as("an empty partition from the earliest offset").isEmpty();

        try (KafkaProducer<byte[], byte[]> plain = stack.producer(Map.of())) {
            for (int i = 0; i < 3; i++) {
                plain.send(new ProducerRecord<>(topic, 1, null, new byte[]{(byte) i})).get();
            }
        }
        String s0 = split(p0, 0).splitId();
        String s1 = split(p1, 0).splitId();
        assertThat(probe(client, group, split(p0, 0), split(p1, 0)))
                .as("three records in partition 1 from offset 0").containsExactly(s1);
        assertThat(probe(client, group, split(p0, 0), split(p1, 2)))
                .as("partition 1 from its last record").containsExactly(s1);
        assertThat(probe(client, group, split(p0, 0), split(p1, 3)))
                .as("partition 1 from past its last record").isEmpty();
        assertThat(probe(client, group, split(p1, KafkaPartitionSplit.LATEST_OFFSET)))
                .as("partition 1 from the latest offset").isEmpty();
        assertThat(probe(client, group, split(p1, 100)))
                .as("partition 1 from an offset past its end (a truncated log): reset to the earliest, as the source's consumer is").containsExactly(s1);

        assertThat(probe(client, group, split(p1, KafkaPartitionSplit.COMMITTED_OFFSET)))
                .as("partition 1 from the group's committed offset, where it has none: the earliest").containsExactly(s1);
        assertThat(StartBacklogProbe.splitsWithRecordsToRead(client, group, group + "-probe", List.of(split(p1, KafkaPartitionSplit.COMMITTED_OFFSET)),
                true, TIMEOUT)).as("the same for a source that resets to the latest").isEmpty();
        commit(client, group, p1, 3);
        assertThat(probe(client, group, split(p1, KafkaPartitionSplit.COMMITTED_OFFSET)))
                .as("partition 1 from the group's committed offset 3").isEmpty();

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
                .as("an aborted transaction and a commit marker, past the last committed records").isEmpty();
        assertThat(probe(client, group, split(p0, 0), split(p1, 3)))
                .as("the committed transaction's record").containsExactly(s0);
    }

    private static Set<String> probe(Properties client, String group, KafkaPartitionSplit... splits) {
        return StartBacklogProbe.splitsWithRecordsToRead(client, group, group + "-probe", List.of(splits), false, TIMEOUT);
    }

    private static void commit(Properties client, String group, TopicPartition tp, long offset) {
        Properties p = new Properties();
        p.putAll(client);
        p.put("group.id", group);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.assign(List.of(tp));
            c.commitSync(Map.of(tp, new OffsetAndMetadata(offset)));
        }
    }

    private static KafkaPartitionSplit split(TopicPartition tp, long start) {
        return new KafkaPartitionSplit(tp, start);
    }
}
