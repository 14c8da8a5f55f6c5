package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class LocalWindowCountsTest {
    static StreamRecord<CountedEvent> event(String user, String name, long at, double value) {
        return new StreamRecord<>(CountedEvent.of(new UserEvent("app", user, name, at, value, null), 3), at);
    }

    private static List<String> drain(OneInputStreamOperatorTestHarness<CountedEvent, WindowPartial> h) {
        List<String> out = h.extractOutputValues().stream()
                .map(p -> p.userKey() + "/" + p.name + "@" + p.windowStart + " n=" + p.count + " sum=" + p.sum + " newest=" + p.newestAt).toList();
        h.getOutput().clear();
        return out;
    }

    @Test
    void eventsOfOneWindowBecomeOnePartialEmittedOnTheIntervalAndBeforeEveryBarrier() throws Exception {
        var h = new OneInputStreamOperatorTestHarness<>(new LocalWindowCounts(60_000, 200, 1000));
        h.open();
        h.setProcessingTime(0);
        h.processElement(event("u1", "open", 2_000, 1.0));
        h.processElement(event("u1", "open", 1_000, 2.0));
        h.processElement(event("u1", "open", 61_000, 4.0));
        h.processElement(event("u2", "open", 1_000, 8.0));
        assertThat(drain(h)).isEmpty();
        h.setProcessingTime(200);
        assertThat(drain(h)).containsExactlyInAnyOrder("app:u1/open@0 n=2 sum=3.0 newest=2000", "app:u1/open@60000 n=1 sum=4.0 newest=61000",
                "app:u2/open@0 n=1 sum=8.0 newest=1000");
        h.processElement(event("u1", "open", 3_000, 1.0));
        h.prepareSnapshotPreBarrier(1);
        assertThat(drain(h)).containsExactly("app:u1/open@0 n=1 sum=1.0 newest=3000");
        h.close();
    }

    @Test
    void aWatermarkThatClosesABufferedWindowComesAfterItsPartial() throws Exception {
        var h = new OneInputStreamOperatorTestHarness<>(new LocalWindowCounts(60_000, 10_000, 1000));
        h.open();
        h.processElement(event("u1", "open", 1_000, 1.0));
        h.processWatermark(30_000);
        assertThat(h.getOutput()).hasSize(1); // only the watermark: the window is still open
        h.processWatermark(59_999);
        assertThat(h.getOutput()).hasSize(3);
        assertThat(h.getOutput().toArray()[1]).isInstanceOf(StreamRecord.class); // the partial, then the watermark
        h.close();
    }
}
