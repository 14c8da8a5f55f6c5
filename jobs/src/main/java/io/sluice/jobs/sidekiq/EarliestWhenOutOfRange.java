package io.sluice.jobs.sidekiq;

import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializerValidator;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.kafka.common.TopicPartition;

import java.util.Collection;
import java.util.Map;
import java.util.Properties;

/**
 * Where the bridge starts without state ({@code start}: its group's committed offsets, else the end or the beginning of
 * the topic, resolved to numbers when the splits are assigned), while an offset found out of range once it reads resets
 * to the oldest record left. The Kafka source makes the starting initializer's reset strategy the consumer's
 * {@code auto.offset.reset}; with {@code sidekiq.start-from: latest} that was {@code latest}, so a restore whose offset
 * retention had deleted (the backlog a stopped Sidekiq leaves in Kafka) jumped to the end and skipped every push still
 * retained. Records retention deleted are gone either way; the consumer logs its reset (at INFO, which
 * {@code flink-conf/log4j.properties} keeps for it). An offset past the end (a recreated topic) resets to the oldest record
 * too, where the markers ({@code sidekiq.dedup-ttl}) skip what was enqueued before.
 */
final class EarliestWhenOutOfRange implements OffsetsInitializer, OffsetsInitializerValidator {
    private static final long serialVersionUID = 1L;

    private final OffsetsInitializer start;

    EarliestWhenOutOfRange(OffsetsInitializer start) {
        this.start = start;
    }

    @Override
    public Map<TopicPartition, Long> getPartitionOffsets(Collection<TopicPartition> partitions, PartitionOffsetsRetriever retriever) {
        return start.getPartitionOffsets(partitions, retriever);
    }

    @Override
    public OffsetResetStrategy getAutoOffsetResetStrategy() {
        return OffsetResetStrategy.EARLIEST;
    }

    @Override
    public void validate(Properties kafkaSourceProperties) {
        if (start instanceof OffsetsInitializerValidator v) {
            v.validate(kafkaSourceProperties);
        }
    }
}
