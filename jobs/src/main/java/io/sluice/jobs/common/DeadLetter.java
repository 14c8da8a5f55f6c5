package io.sluice.jobs.common;

import org.apache.flink.util.OutputTag;

/**
 * A record Sluice could not use: the original key and value bytes untouched, where it came from,
 * which stage rejected it and why. Operators put them on {@link #SIDE_OUTPUT}; written to the
 * dead-letter topic by {@link DeadLetterSerializer}.
 */
public record DeadLetter(String sourceTopic, int partition, long offset, byte[] key, byte[] value, String stage, String reason) {
    /** The side output every validating operator sends its dead letters to. */
    public static final OutputTag<DeadLetter> SIDE_OUTPUT = new OutputTag<>("dead-letters") {
    };
}
