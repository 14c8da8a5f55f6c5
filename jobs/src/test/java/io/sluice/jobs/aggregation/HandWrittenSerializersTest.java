package io.sluice.jobs.aggregation;

import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import io.sluice.jobs.common.FormatVersionedSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link EventBundle} (the shuffle) and {@link UserWindow} (keyed state) through their hand-written serializers. */
class HandWrittenSerializersTest {
    private static EventBundle bundle(int events) {
        CountedEvent e = new CountedEvent();
        e.appId = "app-ü";
        e.userId = "user-42";
        e.name = "purchase";
        EventBundle b = EventBundle.of(e);
        for (int i = 0; i < events; i++) {
            e.occurredAt = 1_700_000_000_000L + i * 37L;
            e.value = i % 3 == 0 ? 0.0 : i * 1.5;
            e.partition = i % 4;
            e.offset = 1000 + i;
            b.add(e);
        }
        return b.trimmed();
    }

    private static UserWindow window(int names) {
        UserWindow w = new UserWindow();
        for (int i = 0; i < names; i++) {
            w.of("name-" + i).add(1_700_000_000_000L + i, i * 0.5, i % 3, -1); // the offset is not kept in state
            w.of("name-" + i).add(1_700_000_000_001L + i, 1.0, 7, -1);
        }
        return w;
    }

    private static <T> T roundTrip(TypeInformation<T> type, T value) throws Exception {
        TypeSerializer<T> serializer = type.createSerializer(new SerializerConfigImpl());
        DataOutputSerializer out = new DataOutputSerializer(64);
        serializer.serialize(value, out);
        DataInputDeserializer in = new DataInputDeserializer(out.getCopyOfBuffer());
        T back = serializer.deserialize(in);
        assertThat(in.available()).as("bytes left after one value").isZero();
        return back;
    }

    @Test
    void aBundleCrossesTheNetworkUnchanged() throws Exception {
        for (int events : new int[] {1, 4, 5, 1000}) {
            EventBundle b = bundle(events);
            assertThat(roundTrip(EventBundle.TYPE, b)).usingRecursiveComparison().isEqualTo(b);
            assertThat(EventBundle.Serializer.INSTANCE.copy(b)).usingRecursiveComparison().isEqualTo(b);
        }
    }

    @Test
    void aUserWindowComesBackFromStateWithEveryEventName() throws Exception {
        for (int names : new int[] {0, 1, 2, 3, 9}) {
            UserWindow w = window(names);
            UserWindow back = roundTrip(UserWindow.TYPE, w);
            assertThat(back.size).isEqualTo(names);
            for (int i = 0; i < names; i++) {
                assertThat(back.names[i]).isEqualTo("name-" + i);
                assertThat(back.accs[i]).usingRecursiveComparison().isEqualTo(w.accs[i]);
                assertThat(back.accs[i].count).isEqualTo(2);
            }
            back.of("one-more").add(1, 1.0, 0, -1); // a restored window takes new event names
            assertThat(back.size).isEqualTo(names + 1);
        }
    }

    @Test
    void copiesShareNothingWithTheOriginal() {
        EventBundle b = bundle(3);
        EventBundle c = EventBundle.Serializer.INSTANCE.copy(b);
        c.times[0] = 0;
        assertThat(b.times[0]).isEqualTo(1_700_000_000_000L);
        UserWindow w = window(2);
        UserWindow v = UserWindow.Serializer.INSTANCE.copy(w);
        v.of("name-0").add(0, 100.0, 0, -1);
        assertThat(w.of("name-0").count).isEqualTo(2);
    }

    @Test
    void theirSnapshotsRestoreCompatibleSerializers() {
        for (TypeSerializer<?> s : new TypeSerializer<?>[] {EventBundle.Serializer.INSTANCE, UserWindow.Serializer.INSTANCE}) {
            check(s);
        }
    }

    private static <T> void check(TypeSerializer<T> serializer) {
        TypeSerializerSnapshot<T> snapshot = serializer.snapshotConfiguration();
        assertThat(snapshot.restoreSerializer()).isEqualTo(serializer);
        assertThat(serializer.snapshotConfiguration().resolveSchemaCompatibility(snapshot).isCompatibleAsIs()).isTrue();
    }

    @Test
    void aSnapshotRecordsItsFormatAndAFormatThisBuildCannotReadIsRefusedByName() throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(64);
        TypeSerializerSnapshot.writeVersionedSnapshot(out, UserWindow.Serializer.INSTANCE.snapshotConfiguration());
        TypeSerializerSnapshot<UserWindow> read = TypeSerializerSnapshot.readVersionedSnapshot(
                new DataInputDeserializer(out.getCopyOfBuffer()), getClass().getClassLoader());
        assertThat(((FormatVersionedSnapshot<UserWindow>) read).format()).isEqualTo(UserWindow.Serializer.Snapshot.FORMAT);
        assertThat(UserWindow.Serializer.INSTANCE.snapshotConfiguration().resolveSchemaCompatibility(read).isCompatibleAsIs()).isTrue();

        // a snapshot from a later build: format 2
        DataOutputSerializer later = new DataOutputSerializer(8);
        later.writeInt(2);
        UserWindow.Serializer.Snapshot future = new UserWindow.Serializer.Snapshot();
        future.readSnapshot(future.getCurrentVersion(), new DataInputDeserializer(later.getCopyOfBuffer()), getClass().getClassLoader());
        assertThat(UserWindow.Serializer.INSTANCE.snapshotConfiguration().resolveSchemaCompatibility(future).isIncompatible()).isTrue();
        assertThatThrownBy(future::restoreSerializer).hasMessageContaining("user windows (UserWindow)").hasMessageContaining("format 2");
        assertThatThrownBy(() -> future.readSnapshot(99, new DataInputDeserializer(new byte[0]), getClass().getClassLoader()))
                .hasMessageContaining("snapshot version 99");
    }
}
