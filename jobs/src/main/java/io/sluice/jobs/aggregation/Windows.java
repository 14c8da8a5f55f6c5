package io.sluice.jobs.aggregation;

/**
 * Tumbling event-time windows aligned to the epoch, and the one lateness rule every operator uses
 * (Flink's own): a window {@code [start, end)} takes events while the watermark is below
 * {@code end - 1 + allowedLateness}, its {@link #closesAt}; an event for a window past that is late.
 */
public final class Windows {
    private Windows() {
    }

    public static long start(long timestamp, long size) {
        return Math.floorDiv(timestamp, size) * size;
    }

    /** The watermark at which the window of {@code timestamp} stops taking events (and its state can go). */
    public static long closesAt(long timestamp, long size, long allowedLateness) {
        return start(timestamp, size) + size - 1 + allowedLateness;
    }

    public static boolean isLate(long timestamp, long size, long allowedLateness, long watermark) {
        return watermark != Long.MIN_VALUE && watermark >= closesAt(timestamp, size, allowedLateness);
    }
}
