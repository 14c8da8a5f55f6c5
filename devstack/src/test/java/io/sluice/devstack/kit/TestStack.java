package io.sluice.devstack.kit;

import io.sluice.core.config.SluiceConfig;
import io.sluice.devstack.EmbeddedStack;
import io.sluice.jobs.common.KafkaIo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/** One test's view of the stack: its own topics and databases, the config that names them, and helpers to read them back. */
public record TestStack(EmbeddedStack stack, SluiceConfig config, Map<String, Integer> schemaIds) {

    /** Another fresh topic set and databases on the same servers, with extra config keys (e.g. generator settings). */
    public TestStack fresh(Map<String, String> overrides) {
        return SluiceStackExtension.fresh(stack, overrides);
    }

    public Connection shard(int i) throws SQLException {
        return config.shards().list().get(i).connect();
    }

    /** Every record of {@code topic} visible to a {@code read_committed} consumer, partition by partition in offset order. */
    public List<ConsumerRecord<byte[], byte[]>> readAll(String topic) {
        Properties p = KafkaIo.clientProperties(config);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream().map(i -> new TopicPartition(topic, i.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts);
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("could not read " + topic + " to its end offsets " + end + " within 60 s");
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            out.sort((a, b) -> a.partition() != b.partition() ? Integer.compare(a.partition(), b.partition()) : Long.compare(a.offset(), b.offset()));
            return out;
        }
    }
}
