package io.sluice.jobs.campaigns;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.core.model.UserEvent;
import io.sluice.jobs.aggregation.CountedEvent;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.heap.HeapKeyedStateBackend;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.util.KeyedBroadcastOperatorTestHarness;
import org.apache.flink.streaming.util.ProcessFunctionTestHarnesses;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class SegmentDetectorTest {
    static final long TEN_MINUTES = 600_000;

    private static KeyedBroadcastOperatorTestHarness<String, CountedEvent, Campaign, PendingPush> harness() throws Exception {
        return ProcessFunctionTestHarnesses.forKeyedBroadcastProcessFunction(new SegmentDetector(60_000, 0), CountedEvent::userKey, Types.STRING,
                SegmentDetector.CAMPAIGNS);
    }

    static Campaign campaign(String id, int minCount, boolean active) {
        return new Campaign(id, "app", "purchase", minCount, TEN_MINUTES, "hi from " + id, 50, active);
    }

    static CountedEvent event(String user, String name, long at) {
        return CountedEvent.of(new UserEvent("app", user, name, at, 1.0, null), 0);
    }

    private static List<String> pushes(KeyedBroadcastOperatorTestHarness<String, CountedEvent, Campaign, PendingPush> h) {
        List<String> out = h.extractOutputValues().stream().map(p -> p.campaignId + "/" + p.userId + "@" + p.createdAt).toList();
        h.getOutput().clear();
        return out;
    }

    @Test
    void aUserEntersTheSegmentOncePerCampaignWindowWhenTheCountReachesMinCount() throws Exception {
        var h = harness();
        h.processBroadcastElement(campaign("c1", 3, true), 0);
        h.processElement(event("u1", "purchase", 1_000), 1_000);
        h.processElement(event("u1", "view", 2_000), 2_000);
        h.processElement(event("u1", "purchase", 3_000), 3_000);
        assertThat(pushes(h)).isEmpty();
        h.processElement(event("u1", "purchase", 4_000), 4_000);
        assertThat(h.extractOutputValues().get(0).jobId).isEqualTo(PushJob.jobIdOf("c1", "u1", 0));
        assertThat(pushes(h)).containsExactly("c1/u1@4000");
        h.processElement(event("u1", "purchase", 5_000), 5_000);
        assertThat(pushes(h)).as("one push per window, however many events follow").isEmpty();
        // the next campaign window counts afresh
        for (long t : new long[] {TEN_MINUTES, TEN_MINUTES + 1, TEN_MINUTES + 2}) {
            h.processElement(event("u1", "purchase", t), t);
        }
        assertThat(pushes(h)).containsExactly("c1/u1@" + (TEN_MINUTES + 2));
        h.close();
    }

    @Test
    void raisingMinCountAndDeactivatingTakeEffectAtOnce() throws Exception {
        var h = harness();
        h.processBroadcastElement(campaign("c1", 2, true), 0);
        h.processElement(event("u1", "purchase", 1_000), 1_000);
        h.processBroadcastElement(campaign("c1", 3, true), 0); // raised before u1's second purchase
        h.processElement(event("u1", "purchase", 2_000), 2_000);
        assertThat(pushes(h)).isEmpty();
        h.processElement(event("u1", "purchase", 3_000), 3_000);
        assertThat(pushes(h)).containsExactly("c1/u1@3000");

        h.processBroadcastElement(campaign("c1", 1, false), 0);
        h.processElement(event("u2", "purchase", 4_000), 4_000);
        assertThat(pushes(h)).as("inactive").isEmpty();
        h.processBroadcastElement(campaign("c1", 1, true), 0);
        h.processElement(event("u2", "purchase", 5_000), 5_000);
        assertThat(pushes(h)).as("active again").containsExactly("c1/u2@5000");
        h.close();
    }

    @Test
    void progressIsCleanedOnceTheCampaignWindowCanTakeNoMoreEvents() throws Exception {
        var h = harness();
        h.processBroadcastWatermark(Long.MAX_VALUE); // as BroadcastWatermarks does in the job
        h.processBroadcastElement(campaign("c1", 3, true), 0);
        h.processBroadcastElement(new Campaign("c2", "app", "open", 1, 60_000, "m", 10, true), 0);
        h.processElement(event("u1", "purchase", 1_000), 1_000);
        h.processElement(event("u1", "open", 1_000), 1_000);
        h.processElement(event("u2", "purchase", 2_000), 2_000);
        assertThat(pushes(h)).containsExactly("c2/u1@1000");
        assertThat(keyedStateEntries(h)).as("one progress map per user").isEqualTo(2);
        assertThat(h.numEventTimeTimers()).as("u1: c1 and c2 windows, u2: c1 window").isEqualTo(3);
        // c2's window [0, 60s) takes events until 60s + 60s (aggregation window) - 1; c1's until 10 min + 60s - 1
        h.processWatermark(119_999);
        assertThat(h.numEventTimeTimers()).isEqualTo(2);
        assertThat(keyedStateEntries(h)).isEqualTo(2);
        h.processWatermark(TEN_MINUTES + 60_000 - 1);
        assertThat(keyedStateEntries(h)).isZero();
        assertThat(h.numEventTimeTimers()).isZero();
        h.close();
    }

    @Test
    void aDeletedCampaignLeavesTheBroadcastState() throws Exception {
        var h = harness();
        h.processBroadcastElement(campaign("c1", 1, true), 0);
        h.processBroadcastElement(ValidateCampaigns.tombstone("c1"), 0);
        assertThat(h.getBroadcastState(SegmentDetector.CAMPAIGNS).immutableEntries()).isEmpty();
        h.processElement(event("u1", "purchase", 1_000), 1_000);
        assertThat(pushes(h)).isEmpty();
        h.close();
    }

    /** Entries in the keyed state (the harness runs the heap backend). */
    private static int keyedStateEntries(KeyedBroadcastOperatorTestHarness<String, CountedEvent, Campaign, PendingPush> h) {
        return ((HeapKeyedStateBackend<?>) ((AbstractStreamOperator<?>) h.getOperator()).getKeyedStateBackend()).numKeyValueStateEntries();
    }
}
