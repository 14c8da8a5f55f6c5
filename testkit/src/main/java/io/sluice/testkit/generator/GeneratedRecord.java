package io.sluice.testkit.generator;

/** One record to produce: raw key and value bytes as they go on the wire; {@code malformed} records carry a deliberately bad value. */
public record GeneratedRecord(String topic, byte[] key, byte[] value, boolean malformed) {
}
