package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class LocalEventBundlesTest {
    static StreamRecord<CountedEvent> event(String user, String name, long at, double value) {
        return new StreamRecord<>(CountedEvent.of(new UserEvent("app", user, name, at, value, null), 3, 0), at);
    }

    private static List<String> drain(OneInputStreamOperatorTestHarness<CountedEvent, EventBundle> h) {
        List<String> out = h.extractOutputValues().stream()
                .map(b -> b.userKey() + "/" + b.name + " " + Arrays.toString(b.times) + " " + Arrays.toString(b.values)).toList();
        h.getOutput().clear();
        return out;
    }

    @Test
    void eventsOfOneUserAndNameBecomeOneBundleInArrivalOrderOnTheIntervalAndBeforeEveryBarrier() throws Exception {
        var h = new OneInputStreamOperatorTestHarness<>(new LocalEventBundles(60_000, 200, 1000));
        h.open();
        h.setProcessingTime(0);
        h.processElement(event("u1", "open", 2_000, 1.0));
        h.processElement(event("u2", "open", 1_000, 8.0));
        h.processElement(event("u1", "open", 1_000, 2.0));
        h.processElement(event("u1", "open", 61_000, 4.0));
        h.processElement(event("u1", "buy", 5_000, 0.0));
        assertThat(drain(h)).isEmpty();
        h.setProcessingTime(200);
        assertThat(drain(h)).containsExactlyInAnyOrder("app:u1/open [2000, 1000, 61000] [1.0, 2.0, 4.0]", "app:u2/open [1000] [8.0]",
                "app:u1/buy [5000] [0.0]");
        h.processElement(event("u1", "open", 3_000, 1.0));
        h.prepareSnapshotPreBarrier(1);
        assertThat(drain(h)).containsExactly("app:u1/open [3000] [1.0]");
        h.close();
    }

    @Test
    void aWatermarkThatClosesTheWindowOfABundledEventComesAfterTheBundle() throws Exception {
        var h = new OneInputStreamOperatorTestHarness<>(new LocalEventBundles(60_000, 10_000, 1000));
        h.open();
        h.processElement(event("u1", "open", 1_000, 1.0));
        h.processWatermark(new Watermark(30_000));
        assertThat(h.getOutput()).hasSize(1); // only the watermark: the window is still open
        h.processWatermark(new Watermark(59_999));
        assertThat(h.getOutput()).hasSize(3);
        assertThat(h.getOutput().toArray()[1]).isInstanceOf(StreamRecord.class); // the bundle, then the watermark
        h.close();
    }
}
