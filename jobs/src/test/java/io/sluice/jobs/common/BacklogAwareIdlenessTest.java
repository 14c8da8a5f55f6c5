package io.sluice.jobs.common;

import org.apache.flink.api.common.eventtime.BoundedOutOfOrdernessWatermarks;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.util.clock.ManualClock;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/** The idleness rule of {@link BacklogAwareIdleness}: silent for the idleness, and nothing left to read. */
class BacklogAwareIdlenessTest {
    private static final long IDLE_NANOS = Duration.ofSeconds(10).toNanos();

    private final ManualClock clock = new ManualClock();
    private final BacklogGate gate = new BacklogGate();
    private final Output out = new Output();
    private final BacklogAwareIdleness.Generator<Long> generator =
            new BacklogAwareIdleness.Generator<>(new BoundedOutOfOrdernessWatermarks<>(Duration.ofSeconds(5)), clock, IDLE_NANOS, gate);

    @Test
    void beforeTheFirstRecordAPartitionGoesIdleOnlyOnceTheReaderIsKnownToHaveNothingToRead() {
        silentFor(Duration.ofSeconds(30));
        assertThat(out.idle).as("idle while it is not yet known whether there is a backlog").isZero();
        gate.backlogAtStart(true);
        silentFor(Duration.ofSeconds(30));
        assertThat(out.idle).as("idle with a backlog at the start").isZero();
        gate.backlogAtStart(false);
        generator.onPeriodicEmit(out);
        assertThat(out.idle).as("idle once there is nothing to read").isEqualTo(1);
        generator.onPeriodicEmit(out);
        assertThat(out.idle).as("marked idle once, not every period").isEqualTo(1);
    }

    @Test
    void afterTheFirstRecordTheConsumersPendingRecordsDecide() {
        AtomicLong pending = new AtomicLong(1_000);
        gate.backlogAtStart(false);
        gate.pendingRecords(pending::get);
        generator.onEvent(1L, 60_000, out);
        silentFor(Duration.ofSeconds(9));
        assertThat(out.idle).as("idle before the idleness").isZero();
        silentFor(Duration.ofSeconds(30));
        assertThat(out.idle).as("idle while the subtask has records pending").isZero();
        assertThat(out.last).as("the partition keeps its watermark meanwhile").isEqualTo(60_000 - 5_000 - 1);
        pending.set(0);
        generator.onPeriodicEmit(out);
        assertThat(out.idle).as("idle once nothing is pending").isEqualTo(1);
        pending.set(10);
        generator.onPeriodicEmit(out);
        assertThat(out.emitted).as("behind again: the partition emits its watermark, which makes it active").isGreaterThan(0);
        generator.onEvent(2L, 70_000, out);
        pending.set(0);
        silentFor(Duration.ofSeconds(9));
        assertThat(out.idle).as("an event restarts the idleness").isEqualTo(1);
    }

    private void silentFor(Duration d) {
        for (long t = 0; t < d.toMillis(); t += 200) {
            clock.advanceTime(Duration.ofMillis(200));
            generator.onPeriodicEmit(out);
        }
    }

    private static final class Output implements WatermarkOutput {
        int idle;
        int emitted;
        long last = Long.MIN_VALUE;

        @Override
        public void emitWatermark(Watermark watermark) {
            emitted++;
            last = watermark.getTimestamp();
        }

        @Override
        public void markIdle() {
            idle++;
        }

        @Override
        public void markActive() {
        }
    }
}
