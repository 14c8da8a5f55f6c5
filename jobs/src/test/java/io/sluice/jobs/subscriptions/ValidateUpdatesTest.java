package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.ProcessFunctionTestHarnesses;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Which updates {@link ValidateUpdates} turns into which dead letter, in Flink's operator harness. */
class ValidateUpdatesTest {
    @Test
    void validationNamesTheFieldAndTheLimit() {
        ValidateUpdates v = new ValidateUpdates("subscription-updates", 8, 16, 12, null, 60_000, null);
        assertThat(v.problem(new SubscriptionUpdate(null, "s", Map.of(), List.of(), 1))).isEqualTo("missing app_id");
        assertThat(v.problem(new SubscriptionUpdate("a", "", Map.of(), List.of(), 1))).isEqualTo("missing subscription_id");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of("123456789", "v"), List.of(), 1)))
                .isEqualTo("set key of 9 bytes is over subscriptions.max-key-bytes=8");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of("k", "é".repeat(9)), List.of(), 1)))
                .isEqualTo("value of set.k is 18 bytes, over subscriptions.max-value-bytes=16");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of(), List.of("123456789"), 1)))
                .isEqualTo("unset key of 9 bytes is over subscriptions.max-key-bytes=8");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of("k", "v"), List.of("x"), 1))).isNull();
        assertThat(v.problem(new SubscriptionUpdate("a", "s".repeat(13), Map.of(), List.of(), 1)))
                .isEqualTo("subscription_id of 13 bytes is over subscriptions.max-id-bytes=12");
        assertThat(v.problem(new SubscriptionUpdate("a\0b", "s", Map.of(), List.of(), 1)))
                .isEqualTo("app_id 'a\\u0000b' contains a NUL character, which Postgres text cannot hold");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of("k", "x\0"), List.of(), 1)))
                .isEqualTo("value of set.'k' contains a NUL character, which Postgres jsonb cannot hold");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of("k\0", "x"), List.of(), 1))).contains("set key 'k\\u0000' contains a NUL");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of(), List.of("\0"), 1))).contains("unset key '\\u0000' contains a NUL");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of(), List.of(), ValidateUpdates.MAX_SENT_AT + 1)))
                .startsWith("sent_at 253402300800000 ms is outside years 1..9999");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of(), List.of(), ValidateUpdates.MIN_SENT_AT - 1))).startsWith("sent_at ");
        assertThat(v.problem(new SubscriptionUpdate("a", "s", Map.of(), List.of(), ValidateUpdates.MIN_SENT_AT))).isNull();
    }

    @Test
    void decodeFailuresPassThroughAndInvalidUpdatesKeepTheirSourcePosition() throws Exception {
        OneInputStreamOperatorTestHarness<Decoded<SubscriptionUpdate>, SubscriptionDelta> h =
                ProcessFunctionTestHarnesses.forProcessFunction(new ValidateUpdates("subscription-updates", 8, 16, 12, null, 60_000, null));
        DeadLetter fromDecoder = new DeadLetter("subscription-updates", 1, 5, null, new byte[] {9}, "decode", "not-wire-format: ...");
        h.processElement(new StreamRecord<>(Decoded.dead(fromDecoder)));
        h.processElement(new StreamRecord<>(Decoded.of(new SubscriptionUpdate("a", "", Map.of(), List.of(), 1), 1, 6, null, new byte[] {8})));
        h.processElement(new StreamRecord<>(Decoded.of(new SubscriptionUpdate("a", "s", Map.of("k", "v"), List.of(), 1), 1, 7, null, new byte[] {7})));
        assertThat(h.extractOutputValues()).hasSize(1);
        List<DeadLetter> dead = h.getSideOutput(DeadLetter.SIDE_OUTPUT).stream().map(StreamRecord::getValue).toList();
        assertThat(dead.get(0)).as("a decode failure passes through as it is").usingRecursiveComparison().isEqualTo(fromDecoder);
        assertThat(dead.get(1).stage()).isEqualTo("validate");
        assertThat(dead.get(1).reason()).isEqualTo("missing subscription_id");
        assertThat(dead.get(1).offset()).isEqualTo(6);
        h.close();
    }
}
