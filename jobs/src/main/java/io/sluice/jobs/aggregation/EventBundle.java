package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;
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
 * The on-time events of one (user, event name) since the last flush of {@link LocalEventBundles}, in
 * arrival (offset) order: the ids once, then the event time and value of each event. What crosses the
 * network to {@link UserActivityOperator} instead of one record per event, so the shuffle carries
 * two numbers per event instead of three strings. Crosses it with {@link Serializer}, written by hand
 * because every event pays for it (network only, never in state).
 */
public final class EventBundle {
    public static final TypeInformation<EventBundle> TYPE = new SerializerTypeInfo<>(EventBundle.class, Serializer.INSTANCE);

    public String appId;
    public String userId;
    public String name;
    /** Source partition and offset of the newest event. */
    public int partition;
    public long offset;
    public int size;
    public long[] times;
    public double[] values;

    public EventBundle() {
    }

    static EventBundle of(CountedEvent e) {
        EventBundle b = new EventBundle();
        b.appId = e.appId;
        b.userId = e.userId;
        b.name = e.name;
        b.times = new long[4];
        b.values = new double[4];
        return b;
    }

    void add(CountedEvent e) {
        if (size == times.length) {
            times = Arrays.copyOf(times, size * 2);
            values = Arrays.copyOf(values, size * 2);
        }
        times[size] = e.occurredAt;
        values[size] = e.value;
        size++;
        partition = e.partition;
        offset = e.offset;
    }

    /** Drops the unused tail of the arrays before the bundle is serialized. */
    EventBundle trimmed() {
        if (times.length != size) {
            times = Arrays.copyOf(times, size);
            values = Arrays.copyOf(values, size);
        }
        return this;
    }

    /** The keyed operators' key: {@code app_id:user_id} ({@link UserEvent#keyOf}). */
    public String userKey() {
        return UserEvent.keyOf(appId, userId);
    }

    /** Ids as Flink strings, then partition, offset, size and the size event times and values. */
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
            out.writeLong(b.offset);
            out.writeInt(b.size);
            for (int i = 0; i < b.size; i++) {
                out.writeLong(b.times[i]);
                out.writeDouble(b.values[i]);
            }
        }

        @Override
        public EventBundle deserialize(DataInputView in) throws IOException {
            EventBundle b = new EventBundle();
            b.appId = StringValue.readString(in);
            b.userId = StringValue.readString(in);
            b.name = StringValue.readString(in);
            b.partition = in.readInt();
            b.offset = in.readLong();
            b.size = in.readInt();
            b.times = new long[b.size];
            b.values = new double[b.size];
            for (int i = 0; i < b.size; i++) {
                b.times[i] = in.readLong();
                b.values[i] = in.readDouble();
            }
            return b;
        }

        @Override
        public TypeSerializerSnapshot<EventBundle> snapshotConfiguration() {
            return new Snapshot();
        }

        /**
         * Format 2 (format 1 had no offset, and is refused by name). Network-only: the jobs take aligned checkpoints,
         * which hold no records in flight; versioned so a change never misreads bytes if that changes.
         */
        public static final class Snapshot extends FormatVersionedSnapshot<EventBundle> {
            public static final int FORMAT = 2;

            public Snapshot() {
                super("event bundles (EventBundle)", FORMAT, format -> format == 2 ? INSTANCE : null);
            }
        }
    }
}
