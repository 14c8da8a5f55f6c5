package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.common.FormatVersionedSnapshot;
import io.sluice.jobs.common.HandWrittenSerializer;
import io.sluice.jobs.common.SerializerTypeInfo;

import org.apache.flink.api.common.typeinfo.TypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInfoFactory;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

import java.io.IOException;

import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;

/**
 * The net effect of one or more consecutive updates to one subscription: keys to set, keys to
 * remove (disjoint), and where its updates came from: the source {@code epoch} and {@code partition}
 * (one of each: deltas of different sources are never merged, see {@link #sameSource}) and the offsets
 * {@code firstVersion}..{@code version} of the oldest and newest update merged in. Merging a newer delta
 * keeps last-writer-wins per key, so applying a merged delta equals applying its updates one by one;
 * and re-applying a delta whose prefix a row already reflects changes nothing the row did not already
 * have (see docs/subscriptions.md).
 *
 * <p>Between the job's operators it crosses the network with {@link #TYPE}, a serializer written by hand because
 * every update pays for it. The class's own type information ({@link Types}, Flink's POJO serializer) is what
 * the keyed state of builds up to 945586d holds; the current job keeps no delta in state.
 */
@TypeInfo(SubscriptionDelta.Types.class)
public class SubscriptionDelta {
    /** The job's type for deltas between operators: {@link Serializer}. */
    public static final TypeInformation<SubscriptionDelta> TYPE = new SerializerTypeInfo<>(SubscriptionDelta.class, Serializer.INSTANCE);

    public String appId;
    public String subscriptionId;
    public HashMap<String, String> set = new HashMap<>();
    public ArrayList<String> unset = new ArrayList<>();
    public long version;
    public long firstVersion;
    public long newestSentAt;
    public int epoch;
    public int partition;
    /** How many source updates this delta stands for. */
    public long updates;

    public SubscriptionDelta() {
    }

    public static SubscriptionDelta of(SubscriptionUpdate u, int epoch, int partition, long offset) {
        SubscriptionDelta d = new SubscriptionDelta();
        d.appId = u.appId();
        d.subscriptionId = u.subscriptionId();
        d.set.putAll(u.set());
        for (String k : u.unset()) {
            if (!d.set.containsKey(k) && !d.unset.contains(k)) {
                d.unset.add(k);
            }
        }
        d.version = offset;
        d.firstVersion = offset;
        d.newestSentAt = u.sentAt();
        d.epoch = epoch;
        d.partition = partition;
        d.updates = 1;
        return d;
    }

    /**
     * Whether {@code other} came from the same source epoch and partition, so offsets order the two and they
     * may be merged. Two partitions of one subscription are a keying error the shard's guard reports; merging
     * them first would hide it.
     */
    public boolean sameSource(SubscriptionDelta other) {
        return epoch == other.epoch && partition == other.partition;
    }

    /** Folds a newer delta of the same subscription and source ({@link #sameSource}) into this one. */
    public void merge(SubscriptionDelta newer) {
        for (String k : newer.unset) {
            set.remove(k);
            if (!unset.contains(k)) {
                unset.add(k);
            }
        }
        for (Map.Entry<String, String> e : newer.set.entrySet()) {
            set.put(e.getKey(), e.getValue());
            unset.remove(e.getKey());
        }
        version = Math.max(version, newer.version);
        firstVersion = Math.min(firstVersion, newer.firstVersion);
        newestSentAt = Math.max(newestSentAt, newer.newestSentAt);
        updates += newer.updates;
    }

    public String key() {
        return key(appId, subscriptionId);
    }

    public static String key(String appId, String subscriptionId) {
        return appId + '\u0000' + subscriptionId;
    }

    /**
     * Flink's POJO serializer with Flink's own map and list serializers for {@code set} and
     * {@code unset}; by reflection alone those two fields would go through Kryo, which is slower.
     */
    public static final class Types extends TypeInfoFactory<SubscriptionDelta> {
        @Override
        public TypeInformation<SubscriptionDelta> createTypeInfo(Type t, Map<String, TypeInformation<?>> genericParameters) {
            Map<String, TypeInformation<?>> fields = new HashMap<>();
            fields.put("appId", org.apache.flink.api.common.typeinfo.Types.STRING);
            fields.put("subscriptionId", org.apache.flink.api.common.typeinfo.Types.STRING);
            fields.put("set", org.apache.flink.api.common.typeinfo.Types.MAP(org.apache.flink.api.common.typeinfo.Types.STRING,
                    org.apache.flink.api.common.typeinfo.Types.STRING));
            fields.put("unset", org.apache.flink.api.common.typeinfo.Types.LIST(org.apache.flink.api.common.typeinfo.Types.STRING));
            fields.put("version", org.apache.flink.api.common.typeinfo.Types.LONG);
            fields.put("firstVersion", org.apache.flink.api.common.typeinfo.Types.LONG);
            fields.put("epoch", org.apache.flink.api.common.typeinfo.Types.INT);
            fields.put("newestSentAt", org.apache.flink.api.common.typeinfo.Types.LONG);
            fields.put("partition", org.apache.flink.api.common.typeinfo.Types.INT);
            fields.put("updates", org.apache.flink.api.common.typeinfo.Types.LONG);
            return org.apache.flink.api.common.typeinfo.Types.POJO(SubscriptionDelta.class, fields);
        }
    }

    /**
     * Writes the delta: the ids as Flink strings (null allowed), {@code set} as a count and each key and value,
     * {@code unset} as a count and each key, then version, firstVersion, newestSentAt, epoch, partition and updates.
     * The layout of the network ({@link Serializer}) and of the shard sink's pending rows in checkpoints
     * ({@link SubscriptionTable#writeRow}); a change to it is a new format of both.
     */
    static void write(SubscriptionDelta d, DataOutputView out) throws IOException {
        StringValue.writeString(d.appId, out);
        StringValue.writeString(d.subscriptionId, out);
        out.writeInt(d.set.size());
        for (Map.Entry<String, String> e : d.set.entrySet()) {
            StringValue.writeString(e.getKey(), out);
            StringValue.writeString(e.getValue(), out);
        }
        out.writeInt(d.unset.size());
        for (String k : d.unset) {
            StringValue.writeString(k, out);
        }
        out.writeLong(d.version);
        out.writeLong(d.firstVersion);
        out.writeLong(d.newestSentAt);
        out.writeInt(d.epoch);
        out.writeInt(d.partition);
        out.writeLong(d.updates);
    }

    /** Reads what {@link #write} wrote. */
    static SubscriptionDelta read(DataInputView in) throws IOException {
        SubscriptionDelta d = new SubscriptionDelta();
        d.appId = StringValue.readString(in);
        d.subscriptionId = StringValue.readString(in);
        int sets = in.readInt();
        d.set = new HashMap<>(Math.max(4, sets * 4 / 3 + 1));
        for (int i = 0; i < sets; i++) {
            d.set.put(StringValue.readString(in), StringValue.readString(in));
        }
        int unsets = in.readInt();
        d.unset = new ArrayList<>(unsets);
        for (int i = 0; i < unsets; i++) {
            d.unset.add(StringValue.readString(in));
        }
        d.version = in.readLong();
        d.firstVersion = in.readLong();
        d.newestSentAt = in.readLong();
        d.epoch = in.readInt();
        d.partition = in.readInt();
        d.updates = in.readLong();
        return d;
    }

    /** {@link #write} and {@link #read}, between the job's operators. */
    public static final class Serializer extends HandWrittenSerializer<SubscriptionDelta> {
        private static final long serialVersionUID = 1L;
        public static final Serializer INSTANCE = new Serializer();

        @Override
        public SubscriptionDelta createInstance() {
            return new SubscriptionDelta();
        }

        @Override
        public void serialize(SubscriptionDelta d, DataOutputView out) throws IOException {
            write(d, out);
        }

        @Override
        public SubscriptionDelta deserialize(DataInputView in) throws IOException {
            return read(in);
        }

        @Override
        public TypeSerializerSnapshot<SubscriptionDelta> snapshotConfiguration() {
            return new Snapshot();
        }

        /**
         * Format 1. Network-only: the jobs take aligned checkpoints ({@code SluiceJob.configure} turns unaligned ones off),
         * which hold no records in flight, so no checkpoint holds this format; the pending rows the sink checkpoints have
         * their own versioned format ({@code ShardedSink.PendingSerializer}).
         */
        public static final class Snapshot extends FormatVersionedSnapshot<SubscriptionDelta> {
            public static final int FORMAT = 1;

            public Snapshot() {
                super("subscription deltas (SubscriptionDelta)", FORMAT, format -> format == FORMAT ? INSTANCE : null);
            }
        }
    }

    @Override
    public String toString() {
        return "SubscriptionDelta{" + appId + "/" + subscriptionId + " set=" + set + " unset=" + unset + " source=" + epoch + "/" + partition + " v=" + firstVersion + ".." + version + " n=" + updates + "}";
    }
}
