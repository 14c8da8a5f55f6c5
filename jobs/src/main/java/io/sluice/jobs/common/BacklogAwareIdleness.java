package io.sluice.jobs.common;

import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.api.common.eventtime.TimestampAssignerSupplier;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.util.clock.RelativeClock;

import java.time.Duration;

/**
 * Per-partition idleness that never lets a partition go idle while its subtask still has records to read. Flink's
 * {@code withIdleness} marks a partition idle once it has delivered nothing for the idleness, whatever the reason: a
 * subtask catching up on a backlog (after a restart or an outage) may not get to one of its partitions for that long,
 * the watermark then follows the partitions being read, and the waiting partition's events, once the watermark is
 * more than the allowed lateness past them, are {@code late} dead letters although they were on time. Here a silent
 * partition goes idle only once its subtask has nothing left to read ({@link BacklogGate}): every split that had records
 * at the start has delivered, and the Kafka consumer reports no records pending. Until then a silent partition keeps its
 * last watermark (the minimum before its first record) and holds the subtask's watermark there. Once idle, it stays idle
 * until its next record, as with {@code withIdleness}.
 *
 * <p>The cost: while any partition of the subtask has records pending (a catch-up, or a subtask running at its limit), its
 * quiet partitions hold its watermark, so windows are finalized late, never wrongly. The idleness clock is
 * Flink's input activity clock, which stops while the source is backpressured, as {@code withIdleness}'s does.
 */
public final class BacklogAwareIdleness<T> implements WatermarkStrategy<T> {
    private static final long serialVersionUID = 1L;

    private final WatermarkStrategy<T> watermarks;
    private final long idleNanos;
    private final BacklogGate gate;

    public BacklogAwareIdleness(WatermarkStrategy<T> watermarks, Duration idleness, BacklogGate gate) {
        if (idleness.isZero() || idleness.isNegative()) {
            throw new IllegalArgumentException("idleness must be positive, was " + idleness);
        }
        this.watermarks = watermarks;
        this.idleNanos = idleness.toNanos();
        this.gate = gate;
    }

    @Override
    public WatermarkGenerator<T> createWatermarkGenerator(WatermarkGeneratorSupplier.Context context) {
        return new Generator<>(watermarks.createWatermarkGenerator(context), context.getInputActivityClock(), idleNanos, gate);
    }

    @Override
    public TimestampAssigner<T> createTimestampAssigner(TimestampAssignerSupplier.Context context) {
        return watermarks.createTimestampAssigner(context);
    }

    static final class Generator<T> implements WatermarkGenerator<T> {
        private final WatermarkGenerator<T> watermarks;
        private final RelativeClock clock;
        private final long idleNanos;
        private final BacklogGate gate;
        private long events;
        private long eventsSeen = -1;
        private long silentSince = Long.MIN_VALUE;
        private boolean idle;

        Generator(WatermarkGenerator<T> watermarks, RelativeClock clock, long idleNanos, BacklogGate gate) {
            this.watermarks = watermarks;
            this.clock = clock;
            this.idleNanos = idleNanos;
            this.gate = gate;
        }

        @Override
        public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
            watermarks.onEvent(event, eventTimestamp, output);
            events++;
        }

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            long now = clock.relativeTimeNanos();
            if (events != eventsSeen) {
                eventsSeen = events;
                silentSince = now;
                idle = false;
            }
            if (idle) {
                return; // until its next event, as with withIdleness
            }
            if (now - silentSince >= idleNanos && gate.idleAllowed()) {
                output.markIdle();
                idle = true;
                return;
            }
            watermarks.onPeriodicEmit(output);
        }
    }
}
