package io.sluice.jobs.aggregation;

import io.sluice.core.model.Campaign;
import io.sluice.jobs.common.DeadLetter;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link UserActivityOperator}'s lateness floor: what it finalized and cleaned stays final across a snapshot and
 * restore, when a restored (or idle-returning) upstream lets a late event through.
 */
class UserActivityLatenessFloorTest {
    static final long MINUTE = 60_000;
    static final long LATENESS = 30_000;

    /** u1 pushed once (c1, min_count 1) in window 0; the watermark then cleaned window 0 and its segment entry. */
    private static OperatorSubtaskState pushedThenCleaned() throws Exception {
        var t = new UserActivityHarness(MINUTE, LATENESS);
        t.h.setProcessingTime(0);
        t.campaign(new Campaign("c1", "app", "purchase", 1, MINUTE, "hi", 10, true));
        t.event("u1", "purchase", 1_000, 1.0);
        assertThat(t.pushes()).containsExactly("c1/u1@1000");
        t.h.processWatermark1(new Watermark(5 * MINUTE)); // far past window 0's close (+ spread) and its segment entry's
        assertThat(t.h.numKeyedStateEntries()).as("window 0 and the segment entry are cleaned").isZero();
        t.rows();
        OperatorSubtaskState state = t.h.snapshot(1, 1);
        t.h.close();
        return state;
    }

    private static UserActivityHarness restore(OperatorSubtaskState state, long windowMs, long lateness) throws Exception {
        KeyedTwoInputStreamOperatorTestHarness<String, EventBundle, Campaign, WindowCount> h = UserActivityHarness.create(windowMs, lateness);
        h.setup();
        h.initializeState(state);
        h.open();
        h.setProcessingTime(0);
        return new UserActivityHarness(h);
    }

    @Test
    void afterARestoreAnEventForACleanedWindowIsALateDeadLetterNotANewCountOrASecondPush() throws Exception {
        var t = restore(pushedThenCleaned(), MINUTE, LATENESS);
        // the restored operator has seen no watermark yet, as after every restart: only the floor knows window 0 is final
        t.event("u1", "purchase", 2_000, 1.0);
        t.h.setProcessingTime(1_000);
        assertThat(t.rows()).as("no row for the cleaned window").isEmpty();
        assertThat(t.pushes()).as("no second push for c1/u1 in window 0").isEmpty();
        List<DeadLetter> dead = deadLetters(t);
        assertThat(dead).singleElement().satisfies(d -> {
            assertThat(d.stage()).isEqualTo("late");
            assertThat(d.reason()).startsWith("late by " + (5 * MINUTE - 2_000) + " ms").contains("lateness floor");
            assertThat(d.sourceTopic()).isEqualTo("user-events");
            assertThat(new String(d.key(), StandardCharsets.UTF_8)).isEqualTo("app:u1");
            assertThat(new String(d.value(), StandardCharsets.UTF_8)).contains("\"occurred_at\":\"2000\"");
        });
        assertThat(t.h.numKeyedStateEntries()).as("nothing recreated").isZero();

        // an event of a window that is still open is counted as usual
        t.event("u1", "purchase", 5 * MINUTE + 1_000, 1.0);
        t.h.setProcessingTime(2_000);
        assertThat(t.rows()).containsExactly("app/u1/purchase@300000: count 1, sum 1.0");
        t.h.close();
    }

    @Test
    void theFloorTravelsOnThroughAnotherSnapshotBeforeAnyWatermark() throws Exception {
        var t = restore(pushedThenCleaned(), MINUTE, LATENESS);
        OperatorSubtaskState again = t.h.snapshot(2, 2);
        t.h.close();
        var u = restore(again, MINUTE, LATENESS);
        u.event("u1", "purchase", 2_000, 1.0);
        assertThat(deadLetters(u)).hasSize(1);
        assertThat(u.pushes()).isEmpty();
        u.h.close();
    }

    @Test
    void aRestoreWithAnotherWindowOrLatenessIsRefusedNamingBoth() throws Exception {
        OperatorSubtaskState state = pushedThenCleaned();
        assertThatThrownBy(() -> restore(state, 2 * MINUTE, LATENESS)).isInstanceOf(SuppressRestartsException.class)
                .rootCause().hasMessageContaining("aggregation.window 60000 ms").hasMessageContaining("this job has 120000 ms");
        assertThatThrownBy(() -> restore(state, MINUTE, 2 * LATENESS)).isInstanceOf(SuppressRestartsException.class)
                .rootCause().hasMessageContaining("aggregation.allowed-lateness 30000 ms").hasMessageContaining("this job has 60000 ms and 60000 ms");
    }

    @SuppressWarnings("unchecked")
    private static List<DeadLetter> deadLetters(UserActivityHarness t) {
        var side = t.h.getSideOutput(DeadLetter.SIDE_OUTPUT);
        return side == null ? List.of() : side.stream().map(r -> ((StreamRecord<DeadLetter>) r).getValue()).toList();
    }
}
