package io.sluice.jobs.common;

import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/** The dead-letter contract's record: headers, timestamps and the size limit (docs/dead-letters.md). */
class DeadLetterSerializerTest {
    private static final int LIMIT = 4_096;

    private static String header(ProducerRecord<byte[], byte[]> r, String name) {
        Header h = r.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    /** What the broker counts, near enough: key, value and headers. */
    private static int size(ProducerRecord<byte[], byte[]> r) {
        int n = (r.key() == null ? 0 : r.key().length) + (r.value() == null ? 0 : r.value().length);
        for (Header h : r.headers()) {
            n += h.key().length() + h.value().length + 10;
        }
        return n;
    }

    private static DeadLetter letter(byte[] key, byte[] value, String reason) {
        return new DeadLetter("user-events", 3, 42, key, value, "decode", reason);
    }

    @Test
    void aDeadLetterWithinTheLimitKeepsItsBytesAndIsStampedNow() {
        byte[] value = new byte[1_000];
        long before = System.currentTimeMillis();
        var r = new DeadLetterSerializer("dead-letters", LIMIT).serialize(letter("k".getBytes(StandardCharsets.UTF_8), value, "why"), null, -5_000L);
        assertThat(r.value()).isSameAs(value);
        assertThat(r.timestamp()).isGreaterThanOrEqualTo(before);
        assertThat(header(r, DeadLetterSerializer.SOURCE_TIMESTAMP)).isEqualTo("-5000");
        assertThat(header(r, DeadLetterSerializer.TRUNCATED)).isNull();
        assertThat(header(r, DeadLetterSerializer.OFFSET)).isEqualTo("42");
        var none = new DeadLetterSerializer("dead-letters", LIMIT).serialize(letter(null, value, "why"), null, Long.MIN_VALUE);
        assertThat(header(none, DeadLetterSerializer.SOURCE_TIMESTAMP)).as("no timestamp assigned").isNull();
    }

    @Test
    void anOversizeDeadLetterKeepsItsHeadersAndAPrefixAndSaysSo() {
        byte[] value = new byte[1_100_000];
        Arrays.fill(value, (byte) 'v');
        var r = new DeadLetterSerializer("dead-letters", LIMIT).serialize(letter("app:u".getBytes(StandardCharsets.UTF_8), value, "why"), null, null);
        assertThat(size(r)).isLessThanOrEqualTo(LIMIT - DeadLetterSerializer.FRAMING_BYTES + 200);
        assertThat(r.value()).isNotEmpty().containsOnly('v');
        assertThat(new String(r.key(), StandardCharsets.UTF_8)).isEqualTo("app:u");
        assertThat(header(r, DeadLetterSerializer.TRUNCATED)).isEqualTo("value");
        assertThat(header(r, DeadLetterSerializer.ORIGINAL_VALUE_BYTES)).isEqualTo("1100000");
        assertThat(header(r, DeadLetterSerializer.ORIGINAL_KEY_BYTES)).isEqualTo("5");
        assertThat(header(r, DeadLetterSerializer.TOPIC)).isEqualTo("user-events");
        assertThat(header(r, DeadLetterSerializer.PARTITION)).isEqualTo("3");
        assertThat(header(r, DeadLetterSerializer.OFFSET)).isEqualTo("42");
        assertThat(header(r, DeadLetterSerializer.REASON)).isEqualTo("why");
    }

    @Test
    void anOversizeKeyAndReasonAreCutToo() {
        byte[] key = new byte[100_000];
        int limit = 20_000;
        var r = new DeadLetterSerializer("dead-letters", limit).serialize(letter(key, new byte[100_000], "r".repeat(50_000)), null, null);
        assertThat(size(r)).isLessThanOrEqualTo(limit);
        assertThat(r.key()).hasSizeGreaterThan(1_000);
        assertThat(header(r, DeadLetterSerializer.TRUNCATED)).isEqualTo("key,value");
        assertThat(header(r, DeadLetterSerializer.ORIGINAL_KEY_BYTES)).isEqualTo("100000");
        assertThat(header(r, DeadLetterSerializer.REASON)).hasSize(DeadLetterSerializer.MAX_REASON_CHARS);
    }
}
