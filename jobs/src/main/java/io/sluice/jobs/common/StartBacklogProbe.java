package io.sluice.jobs.common;

import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Which of a source reader's splits hold records it can read from where they start: the answer a reader cannot give
 * for a partition it has not fetched yet. One {@code read_committed} consumer, assigned (it joins no group and commits
 * nothing), seeks each partition to its split's starting offset as the Kafka source does (committed offsets, else the
 * source's reset, earliest or latest; an offset out of range, or past the last stable offset, resets the same way, as
 * the source's consumer does on a truncated log) and reads until each
 * partition either gives a record (it has a backlog; it is paused then) or reaches its last stable offset as of the
 * start (it has none: transaction markers and aborted records, which a reader never delivers, do not count).
 */
final class StartBacklogProbe {
    private StartBacklogProbe() {
    }

    /**
     * The ids of {@code splits} with a record readable from the split's starting offset; fails after {@code timeout}. The
     * consumer reads committed offsets as group {@code groupId} (for splits starting from them) as client {@code clientId};
     * {@code resetToLatest}: the source's reset, where there is no committed offset or it is out of range.
     */
    static Set<String> splitsWithRecordsToRead(Properties client, String groupId, String clientId, List<KafkaPartitionSplit> splits,
                                               boolean resetToLatest, Duration timeout) {
        Properties p = new Properties();
        p.putAll(client);
        p.put("group.id", groupId);
        p.put("client.id", clientId);
        p.put("isolation.level", "read_committed");
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", resetToLatest ? "latest" : "earliest");
        p.putIfAbsent("default.api.timeout.ms", "15000");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            Map<TopicPartition, KafkaPartitionSplit> byPartition = new HashMap<>();
            Set<TopicPartition> fromCommitted = new HashSet<>(); // restored splits have offsets of their own: no group-coordinator call for them
            for (KafkaPartitionSplit s : splits) {
                byPartition.put(s.getTopicPartition(), s);
                if (s.getStartingOffset() == KafkaPartitionSplit.COMMITTED_OFFSET) {
                    fromCommitted.add(s.getTopicPartition());
                }
            }
            consumer.assign(byPartition.keySet());
            Map<TopicPartition, OffsetAndMetadata> committed = fromCommitted.isEmpty() ? Map.of() : consumer.committed(fromCommitted);
            Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(byPartition.keySet()));
            for (KafkaPartitionSplit s : splits) {
                TopicPartition tp = s.getTopicPartition();
                long start = s.getStartingOffset();
                OffsetAndMetadata c = committed.get(tp);
                boolean reset = start > end.getOrDefault(tp, 0L) // past the last stable offset: a truncated log; the source's consumer resets
                        || start == KafkaPartitionSplit.COMMITTED_OFFSET && c == null;
                if (start == KafkaPartitionSplit.LATEST_OFFSET || reset && resetToLatest) {
                    consumer.seekToEnd(List.of(tp));
                } else if (reset || start == KafkaPartitionSplit.EARLIEST_OFFSET) {
                    consumer.seekToBeginning(List.of(tp));
                } else if (start == KafkaPartitionSplit.COMMITTED_OFFSET) {
                    consumer.seek(tp, c.offset());
                } else {
                    consumer.seek(tp, start);
                }
                s.getStoppingOffset().filter(o -> o >= 0).ifPresent(o -> end.merge(tp, o, Math::min));
            }
            Set<String> backlog = new HashSet<>();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                Set<TopicPartition> open = new HashSet<>();
                for (var e : byPartition.entrySet()) {
                    if (!backlog.contains(e.getValue().splitId()) && consumer.position(e.getKey()) < end.getOrDefault(e.getKey(), 0L)) {
                        open.add(e.getKey());
                    }
                }
                if (open.isEmpty()) {
                    return backlog;
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("no answer within " + timeout + " on whether " + open + " hold records past " + splits);
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (backlog.add(byPartition.get(tp).splitId())) {
                        consumer.pause(List.of(tp));
                    }
                }
            }
        }
    }
}
