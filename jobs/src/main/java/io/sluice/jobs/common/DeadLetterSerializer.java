package io.sluice.jobs.common;

import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.nio.charset.StandardCharsets;

/**
 * Writes a {@link DeadLetter} with its original key and value bytes, and headers
 * {@code sluice.source.topic}, {@code sluice.source.partition}, {@code sluice.source.offset},
 * {@code sluice.stage}, {@code sluice.reason} and, when the input had one, {@code sluice.source.timestamp}
 * (its record timestamp in the stream: the event time for user events). The dead letter's own Kafka timestamp
 * is the time it is written: an input's timestamp can be negative or far ahead, which the producer or the
 * broker refuses, and a refused dead letter would restart the job on the same record again and again.
 */
public final class DeadLetterSerializer implements KafkaRecordSerializationSchema<DeadLetter> {
    public static final String TOPIC = "sluice.source.topic";
    public static final String PARTITION = "sluice.source.partition";
    public static final String OFFSET = "sluice.source.offset";
    public static final String STAGE = "sluice.stage";
    public static final String REASON = "sluice.reason";
    public static final String SOURCE_TIMESTAMP = "sluice.source.timestamp";

    private final String topic;

    public DeadLetterSerializer(String topic) {
        this.topic = topic;
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(DeadLetter d, KafkaSinkContext context, Long timestamp) {
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, null, System.currentTimeMillis(), d.key(), d.value());
        r.headers().add(TOPIC, utf8(d.sourceTopic()));
        r.headers().add(PARTITION, utf8(Integer.toString(d.partition())));
        r.headers().add(OFFSET, utf8(Long.toString(d.offset())));
        r.headers().add(STAGE, utf8(d.stage()));
        r.headers().add(REASON, utf8(d.reason()));
        if (timestamp != null && timestamp != Long.MIN_VALUE) { // MIN_VALUE: the job assigned none (an undecodable or implausible record)
            r.headers().add(SOURCE_TIMESTAMP, utf8(Long.toString(timestamp)));
        }
        return r;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
