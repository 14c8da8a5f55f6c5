package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.ProcessFunctionTestHarnesses;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Which events {@link ValidateEvents} turns into which dead letter, in Flink's operator harness. */
class ValidateEventsTest {
    @Test
    void validationNamesTheField() {
        assertThat(ValidateEvents.problem(new UserEvent("", "u", "open", 1, null, null))).isEqualTo("missing app_id");
        assertThat(ValidateEvents.problem(new UserEvent("a", " ", "open", 1, null, null))).isEqualTo("missing user_id");
        assertThat(ValidateEvents.problem(new UserEvent("a", "u", null, 1, null, null))).isEqualTo("missing name");
        assertThat(ValidateEvents.problem(new UserEvent("a", "u", "open", 1, Double.NaN, null))).isEqualTo("value is NaN, expected a finite number");
        assertThat(ValidateEvents.problem(new UserEvent("a", "u", "open", 1, Double.POSITIVE_INFINITY, null))).contains("Infinity");
        assertThat(ValidateEvents.problem(new UserEvent("a", "u", "open", 1, 2.0, null))).isNull();
    }

    /** A user id of 400 KB fits the input topic, but its push record (the id three times) would not fit a producer request. */
    @Test
    void idsOverAThousandCharactersAreRefused() {
        String id = "u".repeat(1_000);
        assertThat(ValidateEvents.problem(new UserEvent("a", id, "open", 1, null, null))).isNull();
        assertThat(ValidateEvents.problem(new UserEvent("a", "u".repeat(400_000), "open", 1, null, null)))
                .isEqualTo("user_id is 400000 characters long, more than the 1000 the job takes");
        assertThat(ValidateEvents.problem(new UserEvent(id + "a", "u", "open", 1, null, null))).startsWith("app_id is 1001 characters");
        assertThat(ValidateEvents.problem(new UserEvent("a", "u", id + "n", 1, null, null))).startsWith("name is 1001 characters");
    }

    @Test
    void lateAndInvalidEventsBecomeDeadLettersWithTheirSourcePositionAndBytes() throws Exception {
        OneInputStreamOperatorTestHarness<Decoded<UserEvent>, CountedEvent> h =
                ProcessFunctionTestHarnesses.forProcessFunction(new ValidateEvents("user-events", 60_000, 30_000, null));
        byte[] raw = {0, 1, 2};
        h.processElement(new StreamRecord<>(Decoded.of(new UserEvent("a", "u", "open", 10_000, null, null), 0, 7, null, raw), 10_000));
        h.processWatermark(new Watermark(100_000));
        // window [60 s, 120 s) takes events until 150 s: allowed; window [0, 60 s) took them until 90 s: late
        h.processElement(new StreamRecord<>(Decoded.of(new UserEvent("a", "u", "open", 70_000, null, null), 0, 8, null, raw), 70_000));
        h.processElement(new StreamRecord<>(Decoded.of(new UserEvent("a", "u", "open", 50_000, null, null), 0, 9, null, raw), 50_000));
        h.processElement(new StreamRecord<>(Decoded.of(new UserEvent("a", "", "open", 150_000, null, null), 0, 10, null, raw), 150_000));
        assertThat(h.extractOutputValues()).hasSize(2);
        List<DeadLetter> dead = h.getSideOutput(DeadLetter.SIDE_OUTPUT).stream().map(StreamRecord::getValue).toList();
        assertThat(dead).extracting(DeadLetter::stage).containsExactly("late", "validate");
        assertThat(dead).extracting(DeadLetter::offset).containsExactly(9L, 10L);
        assertThat(dead.get(0).reason()).startsWith("late by 50000 ms: occurred_at 1970-01-01T00:00:50Z")
                .contains("window 1970-01-01T00:00:00Z/1970-01-01T00:01:00Z").contains("aggregation.allowed-lateness 30000 ms");
        assertThat(dead.get(1).reason()).isEqualTo("missing user_id");
        assertThat(dead.get(1).value()).as("the original bytes").isEqualTo(raw);
        h.close();
    }
}
