package io.sluice.jobs.aggregation;

import io.sluice.core.model.StateKeys;
import io.sluice.jobs.common.FormatVersionedSnapshot;
import io.sluice.jobs.common.HandWrittenSerializer;
import io.sluice.jobs.common.SerializerTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

import java.io.IOException;
import java.util.Arrays;

/**
 * The on-time events of one (user, event name) from one source partition since the last flush of
 * {@link LocalEventBundles}, in arrival (offset) order: the ids and the partition once, then the event
 * time, value and source offset of each event. What crosses the network to {@link UserActivityOperator}
 * instead of one record per event, so the shuffle carries three numbers per event instead of three
 * strings. The offsets let the keyed operator dead-letter one event with its source position. Crosses it with {@link Serializer}, written by hand
 * because every event pays for it (network only, never in state).
 */
public final class EventBundle {
    public static final TypeInformation<EventBundle> TYPE = new SerializerTypeInfo<>(EventBundle.class, Serializer.INSTANCE);

    public String appId;
    public String userId;
    public String name;
    /** Source partition of every event. */
    public int partition;
    public int size;
    public long[] times;
    public double[] values;
    public long[] offsets;

    public EventBundle() {
    }

    static EventBundle of(CountedEvent e) {
        EventBundle b = new EventBundle();
        b.appId = e.appId;
        b.userId = e.userId;
        b.name = e.name;
        b.partition = e.partition;
        b.times = new long[4];
        b.values = new double[4];
        b.offsets = new long[4];
        return b;
    }

    void add(CountedEvent e) {
        if (size == times.length) {
            times = Arrays.copyOf(times, size * 2);
            values = Arrays.copyOf(values, size * 2);
            offsets = Arrays.copyOf(offsets, size * 2);
        }
        times[size] = e.occurredAt;
        values[size] = e.value;
        offsets[size] = e.offset;
        size++;
    }

    /** Drops the unused tail of the arrays before the bundle is serialized. */
    EventBundle trimmed() {
        if (times.length != size) {
            times = Arrays.copyOf(times, size);
            values = Arrays.copyOf(values, size);
            offsets = Arrays.copyOf(offsets, size);
        }
        return this;
    }

    /** The keyed operators' key: (app, user) as {@link StateKeys#of}, which is {@code app_id:user_id} for app ids without {@code :}. */
    public String userKey() {
        return StateKeys.of(appId, userId);
    }

    /** Ids as Flink strings, then partition, size and the size event times, values and offsets. */
    public static final class Serializer extends HandWrittenSerializer<EventBundle> {
        private static final long serialVersionUID = 1L;
        public static final Serializer INSTANCE = new Serializer();

        @Override
        public EventBundle createInstance() {
            return new EventBundle();
        }

        @Override
        public void serialize(EventBundle b, DataOutputView out) throws IOException {
            StringValue.writeString(b.appId, out);
            StringValue.writeString(b.userId, out);
            StringValue.writeString(b.name, out);
            out.writeInt(b.partition);
            out.writeInt(b.size);
            for (int i = 0; i < b.size; i++) {
                out.writeLong(b.times[i]);
                out.writeDouble(b.values[i]);
                out.writeLong(b.offsets[i]);
            }
        }

        @Override
        public EventBundle deserialize(DataInputView in) throws IOException {
            EventBundle b = new EventBundle();
            b.appId = StringValue.readString(in);
            b.userId = StringValue.readString(in);
            b.name = StringValue.readString(in);
            b.partition = in.readInt();
            b.size = in.readInt();
            b.times = new long[b.size];
            b.values = new double[b.size];
            b.offsets = new long[b.size];
            for (int i = 0; i < b.size; i++) {
                b.times[i] = in.readLong();
                b.values[i] = in.readDouble();
                b.offsets[i] = in.readLong();
            }
            return b;
        }

        @Override
        public TypeSerializerSnapshot<EventBundle> snapshotConfiguration() {
            return new Snapshot();
        }

        /**
         * Format 3: an offset per event (format 2 had the newest only, format 1 none; both are refused by name). Network-only: the jobs take aligned checkpoints,
         * which hold no records in flight; versioned so a change never misreads bytes if that changes.
         */
        public static final class Snapshot extends FormatVersionedSnapshot<EventBundle> {
            public static final int FORMAT = 3;

            public Snapshot() {
                super("event bundles (EventBundle)", FORMAT, format -> format == FORMAT ? INSTANCE : null);
            }
        }
    }
}
