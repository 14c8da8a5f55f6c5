package io.sluice.jobs.aggregation;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class WindowsTest {
    @Test
    void windowsAlignToTheEpochAndAWindowTakesEventsUntilItsEndPlusTheAllowedLateness() {
        assertThat(Windows.start(59_999, 60_000)).isZero();
        assertThat(Windows.start(60_000, 60_000)).isEqualTo(60_000);
        assertThat(Windows.start(-1, 60_000)).isEqualTo(-60_000);
        // window [0, 60s), allowed lateness 10 s: takes events while the watermark is below 69,999
        assertThat(Windows.closesAt(30_000, 60_000, 10_000)).isEqualTo(69_999);
        assertThat(Windows.isLate(30_000, 60_000, 10_000, 69_998)).isFalse();
        assertThat(Windows.isLate(30_000, 60_000, 10_000, 69_999)).isTrue();
        assertThat(Windows.isLate(30_000, 60_000, 10_000, Long.MIN_VALUE)).as("no watermark yet").isFalse();
    }
}
