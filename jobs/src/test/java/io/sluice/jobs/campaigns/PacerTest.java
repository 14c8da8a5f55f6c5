package io.sluice.jobs.campaigns;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class PacerTest {
    private static KeyedOneInputStreamOperatorTestHarness<String, PendingPush, PushJob> harness() throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(new Pacer(), (PendingPush p) -> p.campaignId, Types.STRING);
        h.open();
        return h;
    }

    static StreamRecord<PendingPush> job(String campaign, int maxPerSecond, String user) {
        return new StreamRecord<>(PendingPush.of(new Campaign(campaign, "app", "purchase", 1, 60_000, "m", maxPerSecond, true), user, 0, 1));
    }

    private static List<String> drain(KeyedOneInputStreamOperatorTestHarness<String, PendingPush, PushJob> h) {
        List<String> out = h.extractOutputValues().stream().map(j -> j.campaignId() + "/" + j.userId()).toList();
        h.getOutput().clear();
        return out;
    }

    @Test
    void aCampaignEmitsOneJobPerSlotInOrderAndOthersAreNotHeldBack() throws Exception {
        var h = harness();
        h.setProcessingTime(1_000);
        for (int i = 0; i < 5; i++) {
            h.processElement(job("slow", 50, "u" + i)); // one every 20 ms
        }
        assertThat(drain(h)).containsExactly("slow/u0");
        h.processElement(job("other", 1000, "x"));
        assertThat(drain(h)).as("another campaign goes at once").containsExactly("other/x");
        h.setProcessingTime(1_019);
        assertThat(drain(h)).isEmpty();
        h.setProcessingTime(1_020);
        assertThat(drain(h)).containsExactly("slow/u1");
        h.setProcessingTime(1_060); // the timer for 1,040 fires 20 ms late: one job (its slot 1,059), no catching up
        assertThat(drain(h)).containsExactly("slow/u2");
        h.setProcessingTime(5_000); // a long pause (or a restart) earns no burst: the rest goes one slot apart
        assertThat(drain(h)).containsExactly("slow/u3");
        h.setProcessingTime(5_018);
        assertThat(drain(h)).isEmpty();
        h.setProcessingTime(5_019);
        assertThat(drain(h)).containsExactly("slow/u4");
        assertThat(h.numKeyedStateEntries()).as("the last slot is kept until it passed").isPositive();
        h.setProcessingTime(5_039);
        assertThat(h.numKeyedStateEntries()).as("empty queues leave no state").isZero();
        assertThat(h.numProcessingTimeTimers()).isZero();
        h.close();
    }

    /**
     * Jobs arriving every 11 ms at a 50/s campaign: the queue keeps running empty between slots. The next slot must survive
     * that, or a job arriving just after a drain goes at once, a slot early (this emitted ~91/s).
     */
    @Test
    void arrivalsEveryElevenMillisecondsAtFiftyPerSecondNeverBeatTheSlot() throws Exception {
        var h = harness();
        List<Long> emittedAt = new java.util.ArrayList<>();
        int sent = 0;
        for (long now = 0; now <= 20_000; now++) {
            h.setProcessingTime(now);
            if (now % 11 == 0 && now <= 10_000) {
                h.processElement(job("c", 50, "u" + sent++));
            }
            for (int i = drain(h).size(); i > 0; i--) {
                emittedAt.add(now);
            }
        }
        assertThat(emittedAt).as("every job goes out").hasSize(sent);
        for (int i = 1; i < emittedAt.size(); i++) {
            assertThat(emittedAt.get(i) - emittedAt.get(i - 1)).as("gap before job " + i).isGreaterThanOrEqualTo(20);
        }
        for (int i = 50; i < emittedAt.size(); i++) {
            assertThat(emittedAt.get(i) - emittedAt.get(i - 50)).as("51 jobs span at least 1 s, ending at job " + i).isGreaterThanOrEqualTo(1_000);
        }
        assertThat(emittedAt.get(emittedAt.size() - 1)).as("and the backlog goes at the full 50/s").isLessThanOrEqualTo((sent - 1) * 20L + 20);
        h.close();
    }

    @Test
    void fiveHundredJobsAtFiftyPerSecondTakeTenSecondsAndNoneIsDropped() throws Exception {
        var h = harness();
        h.setProcessingTime(0);
        for (int i = 0; i < 500; i++) {
            h.processElement(job("c", 50, "u" + i));
        }
        long t = 0;
        int emitted = drain(h).size();
        int maxInAnySecond = 0;
        int[] perSecond = new int[20];
        perSecond[0] = emitted;
        while (emitted < 500) {
            t += 5;
            h.setProcessingTime(t);
            int n = drain(h).size();
            emitted += n;
            perSecond[(int) (t / 1000)] += n;
        }
        for (int n : perSecond) {
            maxInAnySecond = Math.max(maxInAnySecond, n);
        }
        assertThat(t).isBetween(9_980L, 10_000L);
        assertThat(maxInAnySecond).isLessThanOrEqualTo(50);
        h.close();
    }

    @Test
    void theQueueIsInTheCheckpointAndDrainsAfterARestore() throws Exception {
        var h = harness();
        h.setProcessingTime(0);
        for (int i = 0; i < 4; i++) {
            h.processElement(job("c", 10, "u" + i));
        }
        assertThat(drain(h)).containsExactly("c/u0");
        var snapshot = h.snapshot(1, 0);
        h.close();

        var restored = new KeyedOneInputStreamOperatorTestHarness<>(new Pacer(), (PendingPush p) -> p.campaignId, Types.STRING);
        restored.setup();
        restored.initializeState(snapshot);
        restored.open();
        restored.setProcessingTime(100);
        assertThat(drain(restored)).containsExactly("c/u1");
        restored.setProcessingTime(300); // the timer for 200 fires late: one job, the next a slot after 299
        assertThat(drain(restored)).containsExactly("c/u2");
        restored.setProcessingTime(398);
        assertThat(drain(restored)).isEmpty();
        restored.setProcessingTime(399);
        assertThat(drain(restored)).containsExactly("c/u3");
        restored.close();
    }

    @Test
    void atEndOfInputEveryQueueDrainsAtOnce() throws Exception {
        var h = harness();
        h.setProcessingTime(0);
        for (int i = 0; i < 3; i++) {
            h.processElement(job("c", 1, "u" + i));
        }
        drain(h);
        h.endInput();
        assertThat(drain(h)).containsExactly("c/u1", "c/u2");
        assertThat(h.numKeyedStateEntries()).isZero();
        h.close();
    }
}
