package io.sluice.jobs.aggregation;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

class WallClockCappedWatermarksTest {
    private final AtomicLong clock = new AtomicLong(1_000_000);
    private final List<Long> emitted = new ArrayList<>();
    private final WatermarkOutput out = new WatermarkOutput() {
        @Override
        public void emitWatermark(Watermark watermark) {
            emitted.add(watermark.getTimestamp());
        }

        @Override
        public void markIdle() {
        }

        @Override
        public void markActive() {
        }
    };
    private final WallClockCappedWatermarks<String> generator = new WallClockCappedWatermarks<>(Duration.ofSeconds(5), clock::get);

    @Test
    void eventsBehindTheClockMoveTheWatermarkAsBoundedOutOfOrdernessDoes() {
        generator.onEvent("a", 900_000, out);
        generator.onEvent("b", 800_000, out);
        generator.onPeriodicEmit(out);
        assertThat(emitted).containsExactly(900_000L - 5_000 - 1);
    }

    @Test
    void anEventAheadOfTheClockHoldsTheWatermarkAtTheClockUntilTheClockPassesIt() {
        generator.onEvent("fast", 1_240_000, out); // 4 minutes ahead
        generator.onPeriodicEmit(out);
        clock.set(1_100_000);
        generator.onPeriodicEmit(out);
        clock.set(1_300_000);
        generator.onPeriodicEmit(out);
        assertThat(emitted).containsExactly(1_000_000L - 5_001, 1_100_000L - 5_001, 1_240_000L - 5_001);
    }

    @Test
    void noEventYetGivesNoWatermarkAboveTheMinimum() {
        generator.onPeriodicEmit(out);
        assertThat(emitted).containsExactly(Long.MIN_VALUE);
    }
}
