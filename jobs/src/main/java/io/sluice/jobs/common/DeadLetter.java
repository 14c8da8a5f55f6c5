package io.sluice.jobs.common;

/**
 * A record Sluice could not use: the original key and value bytes untouched, where it came from,
 * which stage rejected it and why. Written to the dead-letter topic by {@link DeadLetterSerializer}.
 */
public record DeadLetter(String sourceTopic, int partition, long offset, byte[] key, byte[] value, String stage, String reason) {
}
