package io.sluice.jobs.aggregation;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class PlausibleEventTimeTest {
    static final long NOW = 1_800_000_000_000L;
    static final long DAY = 86_400_000L;

    @Test
    void anEventTimeWithinTheAgeAndLeadIsPlausibleAndOutsideItIsNamed() {
        PlausibleEventTime p = new PlausibleEventTime(30 * DAY, 300_000);
        assertThat(p.problem(NOW, NOW)).isNull();
        assertThat(p.problem(NOW - 30 * DAY, NOW)).as("exactly the age").isNull();
        assertThat(p.problem(NOW + 300_000, NOW)).as("exactly the lead").isNull();
        assertThat(p.problem(NOW - 30 * DAY - 1, NOW)).contains("behind the wall clock").contains("aggregation.max-event-age PT720H");
        assertThat(p.problem(-5_000, NOW)).startsWith("occurred_at -5000 (1969-12-31T23:59:55Z)");
        assertThat(p.problem(NOW + 300_001, NOW)).contains("ahead of the wall clock").contains("aggregation.max-event-lead PT5M");
        assertThat(p.problem(NOW * 1000, NOW)).as("microseconds").contains("microseconds");
        assertThat(p.problem(4_102_444_800_000L, NOW)).as("a clock in 2100").contains("2100-01-01T00:00:00Z");
    }

    @Test
    void zeroTurnsABoundOff() {
        assertThat(new PlausibleEventTime(0, 300_000).problem(-5_000, NOW)).isNull();
        assertThat(new PlausibleEventTime(30 * DAY, 0).problem(NOW * 1000, NOW)).isNull();
    }
}
