package io.sluice.jobs.aggregation;

import io.sluice.routing.PushJobIds;
import io.sluice.core.model.Campaign;
import io.sluice.jobs.campaigns.PendingPush;
import io.sluice.jobs.campaigns.ValidateCampaigns;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The segment detection of {@link UserActivityOperator}. */
class UserActivitySegmentsTest {
    static final long TEN_MINUTES = 600_000;

    static Campaign campaign(String id, int minCount, boolean active) {
        return new Campaign(id, "app", "purchase", minCount, TEN_MINUTES, "hi from " + id, 50, active);
    }

    @Test
    void aUserEntersTheSegmentOncePerCampaignWindowWhenTheCountReachesMinCount() throws Exception {
        var t = new UserActivityHarness(60_000, 0);
        t.campaign(campaign("c1", 3, true));
        t.event("u1", "purchase", 1_000, 1.0);
        t.event("u1", "view", 2_000, 1.0);
        t.event("u1", "purchase", 3_000, 1.0);
        assertThat(t.pushes()).isEmpty();
        t.event("u1", "purchase", 4_000, 1.0);
        @SuppressWarnings("unchecked")
        PendingPush p = ((StreamRecord<PendingPush>) t.h.getSideOutput(UserActivityOperator.PUSHES).peek()).getValue();
        assertThat(p.jobId).isEqualTo(PushJobIds.of("app", "c1", "u1", 0));
        assertThat(t.pushes()).containsExactly("c1/u1@4000");
        t.event("u1", "purchase", 5_000, 1.0);
        assertThat(t.pushes()).as("one push per window, however many events follow").isEmpty();
        for (long at : new long[] {TEN_MINUTES, TEN_MINUTES + 1, TEN_MINUTES + 2}) { // the next campaign window counts afresh
            t.event("u1", "purchase", at, 1.0);
        }
        assertThat(t.pushes()).containsExactly("c1/u1@" + (TEN_MINUTES + 2));
        t.h.close();
    }

    @Test
    void raisingMinCountAndDeactivatingTakeEffectAtOnce() throws Exception {
        var t = new UserActivityHarness(60_000, 0);
        t.campaign(campaign("c1", 2, true));
        t.event("u1", "purchase", 1_000, 1.0);
        t.campaign(campaign("c1", 3, true)); // raised before u1's second purchase
        t.event("u1", "purchase", 2_000, 1.0);
        assertThat(t.pushes()).isEmpty();
        t.event("u1", "purchase", 3_000, 1.0);
        assertThat(t.pushes()).containsExactly("c1/u1@3000");

        t.campaign(campaign("c1", 1, false));
        t.event("u2", "purchase", 4_000, 1.0);
        assertThat(t.pushes()).as("inactive").isEmpty();
        t.campaign(campaign("c1", 1, true));
        t.event("u2", "purchase", 5_000, 1.0);
        assertThat(t.pushes()).as("active again").containsExactly("c1/u2@5000");
        t.h.close();
    }

    @Test
    void progressIsCleanedOnceTheCampaignWindowCanTakeNoMoreEvents() throws Exception {
        var t = new UserActivityHarness(60_000, 0);
        var h = t.h;
        t.campaign(campaign("c1", 3, true));
        t.campaign(new Campaign("c2", "app", "open", 1, 60_000, "m", 10, true));
        t.event("u1", "purchase", 1_000, 1.0);
        t.event("u1", "open", 1_000, 1.0);
        t.event("u2", "purchase", 2_000, 1.0);
        assertThat(t.pushes()).containsExactly("c2/u1@1000");
        h.setProcessingTime(1_000); // window counts go to state too
        // timers: window counts u1 (open and purchase share the user's window), u2; segments u1: c1 and c2 windows, u2: c1 window
        assertThat(h.numEventTimeTimers()).isEqualTo(5);
        // c2's window [0, 60s) takes events until 60s + 60s (aggregation window) - 1, c1's until 10 min + 60s - 1;
        // state goes within one aggregation window after that (spread by key)
        h.processWatermark1(new Watermark(119_999 + 60_000));
        assertThat(h.numEventTimeTimers()).as("window counts and c2's window gone").isEqualTo(2);
        h.processWatermark1(new Watermark(TEN_MINUTES + 60_000 - 1 + 60_000));
        assertThat(h.numKeyedStateEntries()).isZero();
        assertThat(h.numEventTimeTimers()).isZero();
        h.close();
    }

    /**
     * Two apps name a campaign "welcome": each app's users enter their own app's segment, with their own job ids
     * (the app is part of the id), and a tombstone keyed by one app deletes only that app's campaign.
     */
    @Test
    void twoAppsWithTheSameCampaignIdKeepTheirOwnCampaigns() throws Exception {
        var t = new UserActivityHarness(60_000, 0);
        t.campaign(new Campaign("welcome", "app-a", "signup", 1, TEN_MINUTES, "hi from a", 50, true));
        t.campaign(new Campaign("welcome", "app-b", "open", 1, TEN_MINUTES, "hi from b", 50, true));
        t.event("app-a", "u1", "signup", 1_000, 1.0);
        t.event("app-b", "u1", "open", 2_000, 1.0);
        t.event("app-b", "u2", "signup", 3_000, 1.0); // app-b's welcome is about "open"
        @SuppressWarnings("unchecked")
        var pushes = t.h.getSideOutput(UserActivityOperator.PUSHES).stream().map(r -> ((StreamRecord<PendingPush>) r).getValue()).toList();
        assertThat(pushes).extracting(p -> p.appId + "/" + p.campaignId + "/" + p.userId + "/" + p.message)
                .containsExactly("app-a/welcome/u1/hi from a", "app-b/welcome/u1/hi from b");
        assertThat(pushes.get(0).jobId).isNotEqualTo(pushes.get(1).jobId).isEqualTo(PushJobIds.of("app-a", "welcome", "u1", 0));
        t.pushes();
        t.campaign(ValidateCampaigns.tombstone("app-a:welcome"));
        t.event("app-a", "u3", "signup", 4_000, 1.0);
        t.event("app-b", "u3", "open", 5_000, 1.0);
        assertThat(t.pushes()).as("only app-a's welcome is gone").containsExactly("welcome/u3@5000");
        t.h.close();
    }

    @Test
    void aDeletedCampaignCountsNothingAndCampaignsSurviveARestore() throws Exception {
        var t = new UserActivityHarness(60_000, 0);
        t.campaign(campaign("c1", 1, true));
        t.campaign(campaign("c2", 2, true));
        t.campaign(ValidateCampaigns.tombstone("app:c1"));
        t.event("u1", "purchase", 1_000, 1.0);
        assertThat(t.pushes()).isEmpty();
        var snapshot = t.h.snapshot(1, 0);
        t.h.close();

        var r = UserActivityHarness.create(60_000, 0);
        r.setup();
        r.initializeState(snapshot);
        r.open();
        r.processElement1(UserActivityHarness.bundle("u1", "purchase", 2_000, 1.0));
        @SuppressWarnings("unchecked")
        var pushed = r.getSideOutput(UserActivityOperator.PUSHES).stream().map(x -> ((StreamRecord<PendingPush>) x).getValue().campaignId).toList();
        assertThat(pushed).as("c2 (min 2) restored with u1's first purchase; c1 stays deleted").containsExactly("c2");
        r.close();
    }
}
