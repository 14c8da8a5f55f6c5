package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The one coalescer, as the job runs it behind {@code keyBy} (keyed harness) and chained to the source. */
class CoalescerTest {

    private static KeyedOneInputStreamOperatorTestHarness<String, SubscriptionDelta, SubscriptionDelta> harness(long interval, int maxKeys) throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(new Coalescer(interval, maxKeys, true), SubscriptionDelta::key, Types.STRING);
        h.open();
        return h;
    }

    static StreamRecord<SubscriptionDelta> update(String sub, Map<String, String> set, List<String> unset, long offset) {
        return update(sub, set, unset, 0, offset);
    }

    static StreamRecord<SubscriptionDelta> update(String sub, Map<String, String> set, List<String> unset, int partition, long offset) {
        return new StreamRecord<>(SubscriptionDelta.of(new SubscriptionUpdate("app", sub, set, unset, 1000 + offset), 0, partition, offset));
    }

    private static List<SubscriptionDelta> output(KeyedOneInputStreamOperatorTestHarness<String, SubscriptionDelta, SubscriptionDelta> h) {
        return h.extractOutputValues();
    }

    @Test
    void updatesBetweenFlushesBecomeOneDeltaLastWriterWinsAndStateIsCleared() throws Exception {
        var h = harness(200, 1000);
        h.setProcessingTime(0);
        h.processElement(update("s1", Map.of("level", "10", "plan", "free"), List.of(), 1));
        h.processElement(update("s1", Map.of("level", "20"), List.of("plan"), 2));
        h.processElement(update("s2", Map.of("x", "1"), List.of(), 3));
        h.processElement(update("s1", Map.of("plan", "pro"), List.of(), 4));
        assertThat(output(h)).isEmpty();
        assertThat(h.numKeyedStateEntries()).as("pending deltas live on the heap, not in the state backend").isZero();
        assertThat(h.numProcessingTimeTimers()).as("no per-key timers").isZero();

        h.setProcessingTime(199);
        assertThat(output(h)).isEmpty();
        h.setProcessingTime(200); // the operator-wide flush
        List<SubscriptionDelta> out = output(h);
        assertThat(out).hasSize(2);
        SubscriptionDelta s1 = out.stream().filter(d -> d.subscriptionId.equals("s1")).findFirst().orElseThrow();
        assertThat(s1.set).containsExactlyInAnyOrderEntriesOf(Map.of("level", "20", "plan", "pro"));
        assertThat(s1.unset).isEmpty();
        assertThat(s1.version).isEqualTo(4);
        assertThat(s1.updates).isEqualTo(3);
        assertThat(h.numProcessingTimeTimers()).isZero();
        h.close();
    }

    @Test
    void updatesOfOneSubscriptionFromTwoPartitionsAreNotMergedAndStayInArrivalOrder() throws Exception {
        var h = harness(200, 1000);
        h.processElement(update("s1", Map.of("a", "1"), List.of(), 0, 10));
        h.processElement(update("s1", Map.of("b", "2"), List.of(), 1, 3)); // another partition: the pending delta goes out first
        h.processElement(update("s1", Map.of("c", "3"), List.of(), 1, 4));
        h.setProcessingTime(1000);
        List<SubscriptionDelta> out = output(h);
        assertThat(out).extracting(d -> d.partition + ":" + d.firstVersion + ".." + d.version + " " + d.set)
                .containsExactly("0:10..10 {a=1}", "1:3..4 {b=2, c=3}");
        h.close();
    }

    @Test
    void anUnsetAfterASetRemovesTheKey() throws Exception {
        var h = harness(200, 1000);
        h.processElement(update("s1", Map.of("a", "1", "b", "2"), List.of(), 1));
        h.processElement(update("s1", Map.of(), List.of("a"), 2));
        h.setProcessingTime(1000);
        SubscriptionDelta d = output(h).get(0);
        assertThat(d.set).containsExactly(Map.entry("b", "2"));
        assertThat(d.unset).containsExactly("a");
        h.close();
    }

    @Test
    void everythingPendingIsEmittedBeforeTheCheckpointBarrierSoTheSnapshotIsEmpty() throws Exception {
        var h = harness(60_000, 1000);
        h.processElement(update("s1", Map.of("a", "1"), List.of(), 1));
        h.processElement(update("s2", Map.of("a", "2"), List.of(), 2));
        h.prepareSnapshotPreBarrier(1);
        assertThat(output(h)).hasSize(2);
        assertThat(h.numProcessingTimeTimers()).isZero();
        var snapshot = h.snapshot(1, 1);
        assertThat(snapshot.getManagedOperatorState()).as("no operator state").isEmpty();
        assertThat(snapshot.getManagedKeyedState()).as("no keyed state").isEmpty();
        h.close();
    }

    @Test
    void reachingTheSizeLimitFlushesAndAHotKeyCollapses() throws Exception {
        var h = harness(60_000, 3);
        for (int i = 0; i < 10_000; i++) {
            h.processElement(update("hot", Map.of("counter", String.valueOf(i)), List.of(), i));
        }
        assertThat(output(h)).isEmpty(); // one pending subscription, however many updates
        h.processElement(update("b", Map.of("x", "1"), List.of(), 10_001));
        h.processElement(update("c", Map.of("x", "1"), List.of(), 10_002));
        List<SubscriptionDelta> out = output(h);
        assertThat(out).hasSize(3);
        assertThat(out.get(0).updates + out.get(1).updates + out.get(2).updates).isEqualTo(10_002);
        assertThat(out.stream().filter(d -> d.subscriptionId.equals("hot")).findFirst().orElseThrow().set).containsEntry("counter", "9999");
        h.endInput();
        h.close();
    }

    @Test
    void chainedToTheSourceItMergesPerSubscriptionAndEmptiesBeforeEveryBarrier() throws Exception {
        try (var h = new OneInputStreamOperatorTestHarness<>(new Coalescer(10_000, 1000, false))) {
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
    void chainedToTheSourceItFlushesWhenFullAndOnTheInterval() throws Exception {
        try (var h = new OneInputStreamOperatorTestHarness<>(new Coalescer(200, 2, false))) {
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

    @Test
    void deltasThatAlreadyMergeUpdatesCountEachUpdateOnce() throws Exception {
        try (var h = new OneInputStreamOperatorTestHarness<>(new Coalescer(10_000, 1000, true))) {
            h.open();
            StreamRecord<SubscriptionDelta> merged = update("s1", Map.of("a", "1"), List.of(), 1);
            merged.getValue().merge(update("s1", Map.of("a", "2"), List.of(), 2).getValue()); // two updates, as a pre-coalescer emits them
            h.processElement(merged);
            h.processElement(update("s1", Map.of("a", "3"), List.of(), 3));
            h.endInput();
            assertThat(h.extractOutputValues()).singleElement().satisfies(d -> {
                assertThat(d.updates).isEqualTo(3);
                assertThat(d.set).containsExactly(Map.entry("a", "3"));
            });
        }
    }
}
