package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class WindowCounterTest {
    static final long MINUTE = 60_000;

    private static KeyedOneInputStreamOperatorTestHarness<String, WindowPartial, WindowCount> harness(long lateness) throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(new WindowCounter(MINUTE, lateness, 1_000, 10_000), WindowPartial::userKey, Types.STRING);
        h.open();
        return h;
    }

    /** One event as the partial {@link LocalWindowCounts} makes of it. */
    static StreamRecord<WindowPartial> event(String user, String name, long at, Double value) {
        CountedEvent e = CountedEvent.of(new UserEvent("app", user, name, at, value, null), 0);
        WindowPartial p = WindowPartial.of(e, Windows.start(at, MINUTE));
        p.add(e);
        return new StreamRecord<>(p, at);
    }

    private static List<String> drain(KeyedOneInputStreamOperatorTestHarness<String, WindowPartial, WindowCount> h) {
        List<String> out = h.extractOutputValues().stream().map(WindowCount::toString).toList();
        h.getOutput().clear();
        return out;
    }

    @Test
    void runningResultsEveryIntervalThenTheFinalResultAtTheWatermarkThenStateAndTimersAreGone() throws Exception {
        var h = harness(30_000);
        h.setProcessingTime(0);
        h.processElement(event("u1", "open", 1_000, 2.0));
        h.processElement(event("u1", "open", 2_000, null));
        h.processElement(event("u1", "view", 3_000, 1.5));
        h.processElement(event("u2", "open", 4_000, 1.0));
        assertThat(drain(h)).as("nothing before the interval").isEmpty();

        h.setProcessingTime(1_000);
        assertThat(drain(h)).containsExactlyInAnyOrder(
                "app/u1/open@0: count 2, sum 2.0", "app/u1/view@0: count 1, sum 1.5", "app/u2/open@0: count 1, sum 1.0");
        h.setProcessingTime(2_000);
        assertThat(drain(h)).as("unchanged windows are not emitted again").isEmpty();

        h.processElement(event("u1", "open", 59_999, 1.0));
        h.processWatermark(MINUTE - 1); // the window closes: its final result goes out at once
        assertThat(drain(h)).containsExactly("app/u1/open@0: count 3, sum 3.0");
        assertThat(h.numEventTimeTimers()).isEqualTo(2); // one cleanup timer per user

        h.processElement(event("u1", "open", 30_000, 4.0)); // late, within the allowed lateness: updates the row
        h.setProcessingTime(3_000);
        assertThat(drain(h)).containsExactly("app/u1/open@0: count 4, sum 7.0");

        h.processWatermark(MINUTE - 1 + 30_000); // no event for the window can come any more
        assertThat(h.numKeyedStateEntries()).isZero();
        assertThat(h.numEventTimeTimers()).isZero();
        h.close();
    }

    @Test
    void eventsAreCountedPerWindowAndTheCountsOnlyGrow() throws Exception {
        var h = harness(0);
        h.setProcessingTime(0);
        for (int i = 0; i < 5; i++) {
            h.processElement(event("u1", "buy", i * 30_000L, 1.0)); // 0, 30s | 60s, 90s | 120s
        }
        h.setProcessingTime(1_000);
        assertThat(drain(h)).containsExactlyInAnyOrder(
                "app/u1/buy@0: count 2, sum 2.0", "app/u1/buy@60000: count 2, sum 2.0", "app/u1/buy@120000: count 1, sum 1.0");
        h.processElement(event("u1", "buy", 130_000, 1.0));
        h.setProcessingTime(2_000);
        assertThat(drain(h)).containsExactly("app/u1/buy@120000: count 2, sum 2.0");
        h.processWatermark(Long.MAX_VALUE);
        assertThat(h.numKeyedStateEntries()).isZero();
        assertThat(h.numEventTimeTimers()).isZero();
        h.close();
    }

    @Test
    void theBufferIsEmittedBeforeEveryCheckpointBarrier() throws Exception {
        var h = harness(0);
        h.setProcessingTime(0);
        h.processElement(event("u1", "open", 1_000, 1.0));
        h.prepareSnapshotPreBarrier(1);
        assertThat(drain(h)).containsExactly("app/u1/open@0: count 1, sum 1.0");
        h.close();
    }

    @Test
    void aWindowCountKeepsTheNewestEventTimeAndSourcePartitionForTheSink() throws Exception {
        var h = harness(0);
        h.setProcessingTime(0);
        h.processElement(event("u1", "open", 5_000, 1.0));
        h.processElement(event("u1", "open", 2_000, 1.0));
        h.setProcessingTime(1_000);
        WindowCount w = h.extractOutputValues().get(0);
        assertThat(w.newestAt).isEqualTo(5_000);
        assertThat(w.records).isEqualTo(2);
        assertThat(w.windowEnd).isEqualTo(MINUTE);
        h.close();
    }
}
