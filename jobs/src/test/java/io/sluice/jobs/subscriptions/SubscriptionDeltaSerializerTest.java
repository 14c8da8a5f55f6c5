package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** {@link SubscriptionDelta} between the job's operators, through its hand-written serializer. */
class SubscriptionDeltaSerializerTest {
    private static SubscriptionDelta delta(int keys) {
        Map<String, String> set = new HashMap<>();
        for (int i = 0; i < keys; i++) {
            set.put("key-ü-" + i, i % 5 == 0 ? "" : "value-" + i);
        }
        SubscriptionDelta d = SubscriptionDelta.of(new SubscriptionUpdate("app-7", "sub-€-1", set, List.of("gone", "also-gone"), 1_700_000_000_123L),
                3, 11, 42_000_000_000L);
        d.merge(SubscriptionDelta.of(new SubscriptionUpdate("app-7", "sub-€-1", Map.of("later", "x"), List.of("key-ü-1"), 1_700_000_000_999L),
                3, 11, 42_000_000_007L));
        return d;
    }

    private static SubscriptionDelta roundTrip(SubscriptionDelta d) throws Exception {
        TypeSerializer<SubscriptionDelta> serializer = SubscriptionDelta.TYPE.createSerializer(new SerializerConfigImpl());
        DataOutputSerializer out = new DataOutputSerializer(64);
        serializer.serialize(d, out);
        DataInputDeserializer in = new DataInputDeserializer(out.getCopyOfBuffer());
        SubscriptionDelta back = serializer.deserialize(in);
        assertThat(in.available()).as("bytes left after one delta").isZero();
        return back;
    }

    @Test
    void aDeltaCrossesTheNetworkUnchanged() throws Exception {
        for (int keys : new int[] {0, 1, 2, 40}) {
            SubscriptionDelta d = delta(keys);
            SubscriptionDelta back = roundTrip(d);
            assertThat(back).usingRecursiveComparison().isEqualTo(d);
            assertThat(back.updates).isEqualTo(2);
            assertThat(back.firstVersion).isEqualTo(42_000_000_000L);
            assertThat(back.version).isEqualTo(42_000_000_007L);
        }
        SubscriptionDelta withNull = delta(1);
        withNull.set.put("null-value", null);
        assertThat(roundTrip(withNull).set).containsEntry("null-value", null).isEqualTo(withNull.set);
    }

    @Test
    void aDeserializedDeltaMergesLikeTheOriginal() throws Exception {
        SubscriptionDelta d = delta(3);
        SubscriptionDelta back = roundTrip(d);
        SubscriptionDelta newer = SubscriptionDelta.of(new SubscriptionUpdate("app-7", "sub-€-1", Map.of("gone", "back"), List.of("later"), 1L), 3, 11, 42_000_000_009L);
        d.merge(newer);
        back.merge(newer);
        assertThat(back).usingRecursiveComparison().isEqualTo(d);
        assertThat(back.set).containsEntry("gone", "back").doesNotContainKey("later");
        assertThat(back.unset).contains("later").doesNotContain("gone");
    }

    @Test
    void copiesShareNothingWithTheOriginal() {
        SubscriptionDelta d = delta(2);
        SubscriptionDelta c = SubscriptionDelta.Serializer.INSTANCE.copy(d);
        c.set.put("new", "v");
        c.unset.clear();
        assertThat(d.set).doesNotContainKey("new");
        assertThat(d.unset).isNotEmpty();
    }

    @Test
    void itsSnapshotRestoresACompatibleSerializer() {
        TypeSerializerSnapshot<SubscriptionDelta> snapshot = SubscriptionDelta.Serializer.INSTANCE.snapshotConfiguration();
        assertThat(snapshot.restoreSerializer()).isEqualTo(SubscriptionDelta.Serializer.INSTANCE);
        assertThat(SubscriptionDelta.Serializer.INSTANCE.snapshotConfiguration().resolveSchemaCompatibility(snapshot).isCompatibleAsIs()).isTrue();
    }
}
