package io.sluice.jobs.aggregation;

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
 * One user's counts in one window, per event name: what {@link UserActivityOperator} keeps in keyed
 * state (key {@code app_id:user_id}, namespace the window start), and what it buffers between
 * emissions. One entry per user and window instead of one per event name halves the state reads,
 * writes and cleanup timers: a user does a few different things in a minute. A user has a handful
 * of event names, so they are looked up by a linear scan.
 */
public final class UserWindow {
    public static final TypeInformation<UserWindow> TYPE = new SerializerTypeInfo<>(UserWindow.class, Serializer.INSTANCE);

    int size;
    String[] names = new String[2];
    WindowAcc[] accs = new WindowAcc[2];

    /** The accumulator of {@code name}, added empty if the window has none yet. */
    WindowAcc of(String name) {
        for (int i = 0; i < size; i++) {
            if (names[i].equals(name)) {
                return accs[i];
            }
        }
        if (size == names.length) {
            names = Arrays.copyOf(names, size * 2);
            accs = Arrays.copyOf(accs, size * 2);
        }
        names[size] = name;
        accs[size] = new WindowAcc();
        return accs[size++];
    }

    /** Event names: the name, then count, sum, newest event time and source partition of its events. */
    public static final class Serializer extends HandWrittenSerializer<UserWindow> {
        private static final long serialVersionUID = 1L;
        public static final Serializer INSTANCE = new Serializer();

        @Override
        public UserWindow createInstance() {
            return new UserWindow();
        }

        @Override
        public void serialize(UserWindow w, DataOutputView out) throws IOException {
            out.writeInt(w.size);
            for (int i = 0; i < w.size; i++) {
                WindowAcc a = w.accs[i];
                StringValue.writeString(w.names[i], out);
                out.writeLong(a.count);
                out.writeDouble(a.sum);
                out.writeLong(a.newestAt);
                out.writeInt(a.partition);
            }
        }

        @Override
        public UserWindow deserialize(DataInputView in) throws IOException {
            UserWindow w = new UserWindow();
            int n = in.readInt();
            w.names = new String[Math.max(2, n)];
            w.accs = new WindowAcc[w.names.length];
            for (int i = 0; i < n; i++) {
                WindowAcc a = new WindowAcc();
                w.names[i] = StringValue.readString(in);
                a.count = in.readLong();
                a.sum = in.readDouble();
                a.newestAt = in.readLong();
                a.partition = in.readInt();
                w.accs[i] = a;
            }
            w.size = n;
            return w;
        }

        @Override
        public TypeSerializerSnapshot<UserWindow> snapshotConfiguration() {
            return new Snapshot();
        }

        /** Format 1: the layout above. The class name is in every savepoint: keep it. */
        public static final class Snapshot extends FormatVersionedSnapshot<UserWindow> {
            public static final int FORMAT = 1;

            public Snapshot() {
                super("user windows (UserWindow)", FORMAT, format -> format == 1 ? INSTANCE : null);
            }
        }
    }
}
