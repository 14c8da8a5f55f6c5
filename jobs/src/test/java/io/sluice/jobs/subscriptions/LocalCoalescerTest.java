package io.sluice.jobs.subscriptions;

import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static io.sluice.jobs.subscriptions.CoalescingOperatorTest.update;
import static org.assertj.core.api.Assertions.assertThat;

class LocalCoalescerTest {
    @Test
    void mergesPerSubscriptionAndEmptiesTheBundleBeforeEveryBarrier() throws Exception {
        try (var h = new OneInputStreamOperatorTestHarness<>(new LocalCoalescer(10_000, 1000))) {
            h.open();
            h.processElement(update("s1", Map.of("level", "8"), List.of(), 1));
            h.processElement(update("s2", Map.of("x", "1"), List.of(), 2));
            h.processElement(update("s1", Map.of("level", "10"), List.of(), 3));
            h.processElement(update("s1", Map.of("level", "20"), List.of("plan"), 4));
            assertThat(h.extractOutputValues()).isEmpty();

            h.prepareSnapshotPreBarrier(1);
            List<SubscriptionDelta> out = h.extractOutputValues();
            assertThat(out).extracting(d -> d.subscriptionId).containsExactly("s1", "s2");
            assertThat(out.get(0).set).containsExactly(Map.entry("level", "20"));
            assertThat(out.get(0).unset).containsExactly("plan");
            assertThat(out.get(0).version).isEqualTo(4);
            assertThat(out.get(0).updates).isEqualTo(3);
            assertThat(h.snapshot(1, 0).getManagedOperatorState()).as("no operator state").isEmpty();
        }
    }

    @Test
    void flushesWhenTheBundleIsFullAndOnTheInterval() throws Exception {
        try (var h = new OneInputStreamOperatorTestHarness<>(new LocalCoalescer(200, 2))) {
            h.setProcessingTime(0);
            h.open();
            h.processElement(update("a", Map.of("k", "1"), List.of(), 1));
            h.processElement(update("b", Map.of("k", "1"), List.of(), 2)); // second key: full
            assertThat(h.extractOutputValues()).hasSize(2);
            h.processElement(update("c", Map.of("k", "1"), List.of(), 3));
            h.setProcessingTime(200);
            assertThat(h.extractOutputValues()).hasSize(3);
        }
    }
}
