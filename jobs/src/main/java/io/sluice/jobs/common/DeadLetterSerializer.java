package io.sluice.jobs.common;

import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Properties;

/**
 * Writes a {@link DeadLetter} with its original key and value bytes, and the headers of the dead-letter
 * contract (docs/dead-letters.md): {@code sluice.source.topic}, {@code sluice.source.partition},
 * {@code sluice.source.offset}, {@code sluice.stage}, {@code sluice.reason} and, when the input had one,
 * {@code sluice.source.timestamp} (its event time). The dead letter's own Kafka timestamp is the time it
 * is written: an input's timestamp can be negative or far ahead, which the producer or the broker
 * refuses, and a refused dead letter would restart the job on the same record again and again.
 *
 * <p>For the same reason no dead letter is larger than the smaller of the producer's
 * {@code max.request.size} and the dead-letter topic's {@code max.message.bytes} (read when the sink
 * opens): a larger one keeps its headers and a prefix of its value (and key), and says so in
 * {@code sluice.truncated} with the original sizes in {@code sluice.original.value.bytes} and
 * {@code sluice.original.key.bytes}; topic, partition and offset still lead to the original record.
 */
public final class DeadLetterSerializer implements KafkaRecordSerializationSchema<DeadLetter> {
    private static final long serialVersionUID = 1L;

    public static final String TOPIC = "sluice.source.topic";
    public static final String PARTITION = "sluice.source.partition";
    public static final String OFFSET = "sluice.source.offset";
    public static final String STAGE = "sluice.stage";
    public static final String REASON = "sluice.reason";
    public static final String SOURCE_TIMESTAMP = "sluice.source.timestamp";
    public static final String TRUNCATED = "sluice.truncated";
    public static final String ORIGINAL_VALUE_BYTES = "sluice.original.value.bytes";
    public static final String ORIGINAL_KEY_BYTES = "sluice.original.key.bytes";

    /** Kafka's defaults: the producer's max.request.size and the broker's message.max.bytes. */
    static final int DEFAULT_REQUEST_BYTES = 1_048_576;
    static final int DEFAULT_TOPIC_BYTES = 1_048_588;
    /** Room for the record batch and record framing, and the truncation headers. */
    static final int FRAMING_BYTES = 512;
    /** Characters, not bytes, so no character is cut in half. */
    static final int MAX_REASON_CHARS = 8_192;

    private final String topic;
    private final Properties clientProperties;
    private int maxBytes;

    /** {@code clientProperties}: the producer's, to learn its {@code max.request.size} and ask the broker for the topic's limit. */
    public DeadLetterSerializer(String topic, Properties clientProperties) {
        this.topic = topic;
        this.clientProperties = clientProperties;
        this.maxBytes = Math.min(requestBytes(clientProperties), DEFAULT_TOPIC_BYTES);
    }

    /** For tests: a fixed limit. */
    DeadLetterSerializer(String topic, int maxBytes) {
        this.topic = topic;
        this.clientProperties = null;
        this.maxBytes = maxBytes;
    }

    @Override
    public void open(org.apache.flink.api.common.serialization.SerializationSchema.InitializationContext context, KafkaSinkContext sinkContext) {
        if (clientProperties != null) {
            maxBytes = Math.min(requestBytes(clientProperties), topicBytes());
        }
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(DeadLetter d, KafkaSinkContext context, Long timestamp) {
        byte[] key = d.key();
        byte[] value = d.value();
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, null, System.currentTimeMillis(), key, value);
        r.headers().add(TOPIC, utf8(String.valueOf(d.sourceTopic())));
        r.headers().add(PARTITION, utf8(Integer.toString(d.partition())));
        r.headers().add(OFFSET, utf8(Long.toString(d.offset())));
        r.headers().add(STAGE, utf8(d.stage()));
        String reason = d.reason();
        r.headers().add(REASON, utf8(reason.length() <= MAX_REASON_CHARS ? reason : reason.substring(0, MAX_REASON_CHARS)));
        if (timestamp != null && timestamp != Long.MIN_VALUE) { // MIN_VALUE: the job assigned none (an undecodable or implausible record)
            r.headers().add(SOURCE_TIMESTAMP, utf8(Long.toString(timestamp)));
        }
        int headerBytes = 0;
        for (Header h : r.headers()) {
            headerBytes += h.key().length() + (h.value() == null ? 0 : h.value().length) + 10;
        }
        int keyBytes = key == null ? 0 : key.length;
        int valueBytes = value == null ? 0 : value.length;
        int room = maxBytes - FRAMING_BYTES - maxBytes / 100 - headerBytes; // 1%: compression can grow incompressible bytes
        if (keyBytes + valueBytes <= room) {
            return r;
        }
        // too large to be written: keep a prefix of the key (at most half the room) and of the value
        byte[] keptKey = truncate(key, Math.max(0, Math.min(keyBytes, room / 2)));
        byte[] keptValue = truncate(value, Math.max(0, room - (keptKey == null ? 0 : keptKey.length)));
        ProducerRecord<byte[], byte[]> cut = new ProducerRecord<>(topic, null, r.timestamp(), keptKey, keptValue, r.headers());
        cut.headers().add(TRUNCATED, utf8(keptKey != null && keptKey.length < keyBytes ? "key,value" : "value"));
        cut.headers().add(ORIGINAL_VALUE_BYTES, utf8(Integer.toString(valueBytes)));
        cut.headers().add(ORIGINAL_KEY_BYTES, utf8(Integer.toString(keyBytes)));
        return cut;
    }

    int maxBytes() {
        return maxBytes;
    }

    private static byte[] truncate(byte[] bytes, int max) {
        return bytes == null || bytes.length <= max ? bytes : Arrays.copyOf(bytes, max);
    }

    private static int requestBytes(Properties p) {
        Object v = p.get("max.request.size");
        return v == null ? DEFAULT_REQUEST_BYTES : Integer.parseInt(v.toString().trim());
    }

    /** The dead-letter topic's max.message.bytes, or the broker default if the broker does not say within 15 s. */
    private int topicBytes() {
        return KafkaIo.describedConfig(clientProperties, admin -> new ConfigResource(ConfigResource.Type.TOPIC, topic), "max.message.bytes",
                "dead letters of " + topic + " are cut to " + DEFAULT_TOPIC_BYTES + " bytes").map(Integer::parseInt).orElse(DEFAULT_TOPIC_BYTES);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
