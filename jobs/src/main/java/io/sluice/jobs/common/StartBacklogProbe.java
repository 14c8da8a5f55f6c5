package io.sluice.jobs.common;

import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplit;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * Whether a source reader's partitions hold records it can read from where it starts: the answer a reader that has
 * delivered nothing yet cannot give itself. One {@code read_committed} consumer, assigned (it joins no group and commits
 * nothing), seeks each partition to the split's starting offset and reads until it either gets a record (there is a
 * backlog) or every position reaches the partition's last stable offset as of the start (there is none: transaction
 * markers and aborted records, which a reader never delivers, do not count).
 */
final class StartBacklogProbe {
    private StartBacklogProbe() {
    }

    /**
     * True if a record is readable in any of {@code splits} from its starting offset; fails after {@code timeout}. The
     * consumer reads committed offsets as group {@code groupId} (for splits starting from them) as client {@code clientId}.
     */
    static boolean hasRecordsToRead(Properties client, String groupId, String clientId, List<KafkaPartitionSplit> splits, Duration timeout) {
        Properties p = new Properties();
        p.putAll(client);
        p.put("group.id", groupId);
        p.put("client.id", clientId);
        p.put("isolation.level", "read_committed");
        p.put("enable.auto.commit", "false");
        p.put("max.poll.records", "1");
        p.putIfAbsent("default.api.timeout.ms", "15000");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (KafkaPartitionSplit s : splits) {
                partitions.add(s.getTopicPartition());
            }
            consumer.assign(partitions);
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(new java.util.HashSet<>(partitions));
            Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(partitions));
            for (KafkaPartitionSplit s : splits) {
                TopicPartition tp = s.getTopicPartition();
                long start = s.getStartingOffset();
                OffsetAndMetadata c = committed.get(tp);
                if (start >= 0) {
                    consumer.seek(tp, start);
                } else if (start == KafkaPartitionSplit.LATEST_OFFSET) {
                    consumer.seekToEnd(List.of(tp));
                } else if (start == KafkaPartitionSplit.COMMITTED_OFFSET && c != null) {
                    consumer.seek(tp, c.offset());
                } else {
                    consumer.seekToBeginning(List.of(tp));
                }
                s.getStoppingOffset().filter(o -> o >= 0).ifPresent(o -> end.merge(tp, o, Math::min));
            }
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                boolean read = true;
                for (TopicPartition tp : partitions) {
                    read &= consumer.position(tp) >= end.getOrDefault(tp, 0L);
                }
                if (read) {
                    return false;
                }
                if (!consumer.poll(Duration.ofMillis(200)).isEmpty()) {
                    return true;
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("no answer within " + timeout + " on whether " + partitions + " hold records past " + splits);
                }
            }
        }
    }
}
