package io.sluice.jobs.common;

import org.apache.flink.api.common.eventtime.BoundedOutOfOrdernessWatermarks;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.util.clock.ManualClock;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/** The idleness rule of {@link BacklogAwareIdleness} and {@link BacklogGate}: silent for the idleness, and nothing left to read. */
class BacklogAwareIdlenessTest {
    private static final long IDLE_NANOS = Duration.ofSeconds(10).toNanos();

    private final ManualClock clock = new ManualClock();
    private final BacklogGate gate = new BacklogGate(() -> clock.relativeTimeNanos());
    private final Output out = new Output();
    private final BacklogAwareIdleness.Generator<Long> generator =
            new BacklogAwareIdleness.Generator<>(new BoundedOutOfOrdernessWatermarks<>(Duration.ofSeconds(5)), clock, IDLE_NANOS, gate);

    @BeforeEach
    void clockPastZero() {
        clock.advanceTime(Duration.ofHours(1)); // a gate takes 0 for "not started"
    }

    @Test
    void aSilentPartitionHoldsUntilEverySplitWithABacklogAtTheStartHasDelivered() {
        silentFor(Duration.ofSeconds(30));
        assertThat(out.idle).as("idle while the start has not been probed").isZero();
        gate.backlogAtStart(Set.of("t-0", "t-1"));
        gate.delivered("t-0");
        silentFor(Duration.ofSeconds(30));
        assertThat(out.idle).as("idle while t-1, which had records at the start, has not delivered").isZero();
        assertThat(out.last).as("the silent partition holds the minimum meanwhile").isEqualTo(Long.MIN_VALUE);
        gate.delivered("t-1");
        generator.onPeriodicEmit(out);
        assertThat(out.idle).as("idle once both delivered and no gauge reports anything pending").isEqualTo(1);
    }

    @Test
    void aSplitThatHadABacklogButDeliversNothingHoldsForFiveMinutesAtMost() {
        gate.backlogAtStart(Set.of("t-0"));
        silentFor(BacklogGate.MAX_START_HOLD.minusSeconds(1));
        assertThat(out.idle).as("idle before the hold's end").isZero();
        silentFor(Duration.ofSeconds(2));
        assertThat(out.idle).as("idle after it: records deleted meanwhile must not stop event time for good").isEqualTo(1);
    }

    @Test
    void aProbeThatNeverAnswersHoldsForFiveMinutesAtMost() {
        gate.backlogAtStart(null);
        silentFor(BacklogGate.MAX_START_HOLD.minusSeconds(1));
        assertThat(out.idle).as("idle before the hold's end").isZero();
        silentFor(Duration.ofSeconds(2));
        assertThat(out.idle).as("idle after it").isEqualTo(1);
    }

    @Test
    void aReaderThatHadNothingAtTheStartLetsItsSilentPartitionsGoIdleAfterTheIdleness() {
        gate.backlogAtStart(Set.of());
        silentFor(Duration.ofSeconds(9));
        assertThat(out.idle).as("idle before the idleness").isZero();
        silentFor(Duration.ofSeconds(2));
        assertThat(out.idle).as("idle after it, once").isEqualTo(1);
        silentFor(Duration.ofSeconds(10));
        assertThat(out.idle).as("marked idle once, not every period").isEqualTo(1);
    }

    @Test
    void afterTheStartTheConsumersPendingRecordsDecideAndAnIdlePartitionStaysIdleUntilItsNextEvent() {
        AtomicLong pending = new AtomicLong(1_000);
        gate.backlogAtStart(Set.of("t-0"));
        gate.delivered("t-0");
        gate.pendingRecords(pending::get);
        generator.onEvent(1L, 60_000, out);
        silentFor(Duration.ofSeconds(30));
        assertThat(out.idle).as("idle while the subtask has records pending").isZero();
        assertThat(out.last).as("the partition keeps its watermark meanwhile").isEqualTo(60_000 - 5_000 - 1);
        pending.set(0);
        generator.onPeriodicEmit(out);
        assertThat(out.idle).as("idle once nothing is pending").isEqualTo(1);
        int emitted = out.emitted;
        pending.set(10);
        silentFor(Duration.ofSeconds(5));
        assertThat(out.emitted).as("an idle partition emits nothing (which would make it active) until its next event").isEqualTo(emitted);
        generator.onEvent(2L, 70_000, out);
        generator.onPeriodicEmit(out);
        assertThat(out.last).as("its next event makes it active with its watermark").isEqualTo(70_000 - 5_000 - 1);
        pending.set(0);
        silentFor(Duration.ofSeconds(9));
        assertThat(out.idle).as("the event restarted the idleness").isEqualTo(1);
        silentFor(Duration.ofSeconds(2));
        assertThat(out.idle).as("idle again after it").isEqualTo(2);
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
