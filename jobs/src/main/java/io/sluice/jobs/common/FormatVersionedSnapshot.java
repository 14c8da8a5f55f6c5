package io.sluice.jobs.common;

import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSchemaCompatibility;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

import java.io.IOException;
import java.util.function.IntFunction;

/**
 * The snapshot of a {@link HandWrittenSerializer}: it records which version of the data format the
 * serializer wrote, so a build that changes the format can still read state written by an earlier one,
 * and a build that cannot says so by name instead of misreading bytes.
 *
 * <p>To change a format: raise the subclass's current format version, teach its serializer factory to
 * return a reader for every older version (the state is then migrated: read with the old one, written
 * with the new one), and check in a snapshot of the new format beside the old ones' (see
 * {@code UserActivityStateFormatTest}). Snapshots written before formats were versioned are Flink's
 * {@code SimpleTypeSerializerSnapshot} (snapshot version 2, whose payload is the serializer's class name, or 3,
 * which has none) and read as format 1.
 */
public abstract class FormatVersionedSnapshot<T> implements TypeSerializerSnapshot<T> {
    /** Snapshot layout: 2 and 3 were {@code SimpleTypeSerializerSnapshot}'s; 4 adds the format version. */
    private static final int SNAPSHOT_VERSION = 4;

    private final String typeName;
    private final int currentFormat;
    private final IntFunction<TypeSerializer<T>> serializerOfFormat;
    private int format;

    /**
     * @param typeName what the state holds, for error messages
     * @param currentFormat the format this build writes
     * @param serializerOfFormat a serializer that reads (and, for {@code currentFormat}, writes) a format version;
     *                           null for a version this build cannot read
     */
    protected FormatVersionedSnapshot(String typeName, int currentFormat, IntFunction<TypeSerializer<T>> serializerOfFormat) {
        this.typeName = typeName;
        this.currentFormat = currentFormat;
        this.serializerOfFormat = serializerOfFormat;
        this.format = currentFormat;
    }

    /** The data format version this snapshot describes. */
    public int format() {
        return format;
    }

    @Override
    public int getCurrentVersion() {
        return SNAPSHOT_VERSION;
    }

    @Override
    public void writeSnapshot(DataOutputView out) throws IOException {
        out.writeInt(format);
    }

    @Override
    public void readSnapshot(int readVersion, DataInputView in, ClassLoader classLoader) throws IOException {
        switch (readVersion) {
            case 2 -> {
                in.readUTF(); // SimpleTypeSerializerSnapshot 2 wrote the serializer's class name
                format = 1;
            }
            case 3 -> format = 1;
            case SNAPSHOT_VERSION -> format = in.readInt();
            default -> throw new IOException("the state of " + typeName + " was written with snapshot version " + readVersion
                    + ", which this build of Sluice does not know (it reads 2 to " + SNAPSHOT_VERSION
                    + "): restore it with the build that wrote it, or a newer one");
        }
    }

    @Override
    public TypeSerializer<T> restoreSerializer() {
        TypeSerializer<T> s = format <= currentFormat ? serializerOfFormat.apply(format) : null;
        if (s == null) {
            throw new IllegalStateException("the state of " + typeName + " is in format " + format + ", which this build of Sluice"
                    + " cannot read (it writes format " + currentFormat + "): restore it with the build that wrote it, or see docs/cluster.md (upgrades)");
        }
        return s;
    }

    @Override
    public TypeSerializerSchemaCompatibility<T> resolveSchemaCompatibility(TypeSerializerSnapshot<T> oldSnapshot) {
        if (!(oldSnapshot instanceof FormatVersionedSnapshot<T> old) || old.getClass() != getClass()) {
            return TypeSerializerSchemaCompatibility.incompatible();
        }
        if (old.format == currentFormat) {
            return TypeSerializerSchemaCompatibility.compatibleAsIs();
        }
        if (old.format < currentFormat && serializerOfFormat.apply(old.format) != null) {
            return TypeSerializerSchemaCompatibility.compatibleAfterMigration();
        }
        return TypeSerializerSchemaCompatibility.incompatible();
    }
}
