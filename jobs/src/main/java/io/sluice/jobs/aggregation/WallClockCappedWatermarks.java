package io.sluice.jobs.aggregation;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;

import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * Bounded out-of-orderness whose watermark never runs ahead of the wall clock: the newest event time seen, or the wall
 * clock if that is earlier, minus the bound. An event dated ahead of now that {@code aggregation.max-event-lead} still
 * lets through (a device clock a few minutes fast) is counted in its own window, which closes once the wall clock passes
 * it; it does not carry its partition's watermark past the on-time events behind it, which would otherwise all be judged
 * late until the wall clock caught up. A replay or backfill of older events is unaffected: their times are behind the clock.
 */
final class WallClockCappedWatermarks<T> implements WatermarkGenerator<T> {
    private final long boundMs;
    private final LongSupplier clock;
    private long newest;

    WallClockCappedWatermarks(Duration bound) {
        this(bound, System::currentTimeMillis);
    }

    WallClockCappedWatermarks(Duration bound, LongSupplier clock) {
        this.boundMs = bound.toMillis();
        this.clock = clock;
        this.newest = Long.MIN_VALUE + boundMs + 1; // no watermark below Long.MIN_VALUE before the first event
    }

    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
        newest = Math.max(newest, eventTimestamp);
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        output.emitWatermark(new Watermark(Math.min(newest, clock.getAsLong()) - boundMs - 1));
    }
}
