package io.sluice.jobs.aggregation;

import org.apache.flink.streaming.api.watermark.Watermark;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The window counts of {@link UserActivityOperator}. */
class UserActivityWindowsTest {
    static final long MINUTE = 60_000;

    @Test
    void runningResultsEveryIntervalThenTheFinalResultAtTheWatermarkThenStateAndTimersAreGone() throws Exception {
        var t = new UserActivityHarness(MINUTE, 30_000);
        var h = t.h;
        h.setProcessingTime(0);
        t.event("u1", "open", 1_000, 2.0);
        t.event("u1", "open", 2_000, null);
        t.event("u1", "view", 3_000, 1.5);
        t.event("u2", "open", 4_000, 1.0);
        assertThat(t.rows()).as("nothing before the interval").isEmpty();

        h.setProcessingTime(1_000);
        assertThat(t.rows()).containsExactlyInAnyOrder(
                "app/u1/open@0: count 2, sum 2.0", "app/u1/view@0: count 1, sum 1.5", "app/u2/open@0: count 1, sum 1.0");
        h.setProcessingTime(2_000);
        assertThat(t.rows()).as("unchanged windows are not emitted again").isEmpty();

        t.event("u1", "open", 59_999, 1.0);
        h.processWatermark1(new Watermark(MINUTE - 1)); // the window closes: its final result goes out at once
        assertThat(t.rows()).containsExactly("app/u1/open@0: count 3, sum 3.0");
        assertThat(h.numEventTimeTimers()).isEqualTo(2); // one cleanup timer per user and window (u1 has two event names in it)

        t.event("u1", "open", 30_000, 4.0); // late, within the allowed lateness: updates the row
        h.setProcessingTime(3_000);
        assertThat(t.rows()).containsExactly("app/u1/open@0: count 4, sum 7.0");

        h.processWatermark1(new Watermark(MINUTE - 1 + 30_000 - 1));
        assertThat(h.numKeyedStateEntries()).as("the window still takes events: one entry per user and window").isEqualTo(2);
        // no event for the window can come any more; its state goes within one more window (spread by key)
        h.processWatermark1(new Watermark(MINUTE - 1 + 30_000 + MINUTE));
        assertThat(h.numKeyedStateEntries()).isZero();
        assertThat(h.numEventTimeTimers()).isZero();
        h.close();
    }

    @Test
    void eventsAreCountedPerWindowAndTheCountsOnlyGrow() throws Exception {
        var t = new UserActivityHarness(MINUTE, 0);
        var h = t.h;
        h.setProcessingTime(0);
        for (int i = 0; i < 5; i++) {
            t.event("u1", "buy", i * 30_000L, 1.0); // 0, 30s | 60s, 90s | 120s
        }
        h.setProcessingTime(1_000);
        assertThat(t.rows()).containsExactlyInAnyOrder(
                "app/u1/buy@0: count 2, sum 2.0", "app/u1/buy@60000: count 2, sum 2.0", "app/u1/buy@120000: count 1, sum 1.0");
        t.event("u1", "buy", 130_000, 1.0);
        h.setProcessingTime(2_000);
        assertThat(t.rows()).containsExactly("app/u1/buy@120000: count 2, sum 2.0");
        h.processWatermark1(new Watermark(Long.MAX_VALUE));
        assertThat(h.numKeyedStateEntries()).isZero();
        assertThat(h.numEventTimeTimers()).isZero();
        h.close();
    }

    @Test
    void theBufferIsEmittedBeforeEveryCheckpointBarrierAndTheNextTickDoesNotRepeatIt() throws Exception {
        var t = new UserActivityHarness(MINUTE, 0);
        var h = t.h;
        h.setProcessingTime(0);
        t.event("u1", "open", 1_000, 1.0);
        h.setProcessingTime(700);
        h.prepareSnapshotPreBarrier(1);
        assertThat(t.rows()).containsExactly("app/u1/open@0: count 1, sum 1.0");
        t.event("u1", "open", 2_000, 1.0);
        h.setProcessingTime(1_000); // 300 ms after the barrier's emission: this tick is skipped
        assertThat(t.rows()).isEmpty();
        h.setProcessingTime(2_000); // a whole interval without a barrier: the tick emits
        assertThat(t.rows()).containsExactly("app/u1/open@0: count 2, sum 2.0");
        h.close();
    }

    @Test
    void aWindowCountCarriesTheNewestEventTimeAndTheEventsItAddsForTheSink() throws Exception {
        var t = new UserActivityHarness(MINUTE, 0);
        var h = t.h;
        h.setProcessingTime(0);
        t.event("u1", "open", 5_000, 1.0);
        t.event("u1", "open", 2_000, 1.0);
        h.setProcessingTime(1_000);
        WindowCount w = h.extractOutputValues().get(0);
        assertThat(w.newestAt).isEqualTo(5_000);
        assertThat(w.records).isEqualTo(2);
        assertThat(w.windowEnd).isEqualTo(MINUTE);
        h.close();
    }
}
