package io.sluice.jobs.shards;

import io.sluice.jobs.common.DeadLetter;

import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

import java.io.IOException;
import java.io.Serializable;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;

/**
 * What {@link ShardedSink} needs to know about one kind of row: how to route it, how to merge two
 * buffered versions of the same row, how to write a batch (one guarded statement shape, no commit), and
 * what a rejected row looks like on the dead-letter topic. Writes must be idempotent and guarded by a
 * monotonic version, so that a replay after a restore changes nothing a row already reflects.
 */
public interface ShardTable<T> extends Serializable {
    /** The app whose shard the row belongs to. */
    String appId(T row);

    /** The row's identity within its shard (any value with {@code equals} and {@code hashCode}): buffered rows with the same key are merged. */
    Object key(T row);

    /** Whether two buffered rows with the same key may be merged; when not, both are written, {@code older} first. */
    default boolean mergeable(T older, T newer) {
        return true;
    }

    /** {@code older} with {@code newer} folded in (may mutate and return {@code older}). */
    T merge(T older, T newer);

    /**
     * Writes the rows on {@code c} inside the caller's transaction (the caller commits) and says what the
     * version guard did with those it did not apply.
     */
    Written<T> write(Connection c, List<T> rows) throws SQLException;

    /** What a batch write did not apply: no-ops (replays), rows refused as dead letters, rows to write again in the same transaction. */
    record Written<T>(int noOps, List<DeadLetter> refused, List<T> again) {
        public static <T> Written<T> applied(int noOps) {
            return new Written<>(noOps, List.of(), List.of());
        }
    }

    /** The topic the rows come from, for {@code sluice_progress}. */
    String sourceTopic();

    /** The source epoch of the row's input (0 unless the table's versions have epochs), for {@code sluice_progress}. */
    default int sourceEpoch(T row) {
        return 0;
    }

    /** The Kafka partition the row's newest input came from, for {@code sluice_progress}. */
    int sourcePartition(T row);

    /** The offset of the row's newest input in that partition (-1 when unknown), for {@code sluice_progress}. */
    long sourceOffset(T row);

    /** Event time of the newest input the row reflects (epoch ms), for time lag. */
    long newestEventAt(T row);

    /** The dead letter for a row the shard rejected on its own; {@code reason} names the shard and the error. */
    DeadLetter rejected(T row, String reason);

    /**
     * Writes a row the sink holds at a checkpoint (rows a shard has not committed yet are part of the sink's state).
     * The format is versioned by the sink's state serializer: a change here needs a new version there.
     */
    void writeRow(DataOutputView out, T row) throws IOException;

    /** Reads a row {@link #writeRow} wrote. */
    T readRow(DataInputView in) throws IOException;

    /**
     * Whether an older row of a key written after a newer one loses something (a delta the guard then refuses), rather
     * than being a no-op (an absolute value the guard refuses). The sink refuses to hand such rows to other writers.
     */
    default boolean orderSensitive() {
        return true;
    }

    /**
     * Of {@code rows} (all of one shard), the indexes of those the shard has already applied, or superseded in order:
     * such a row can be handed to any writer, since writing it again is a no-op. Used when rows held at another
     * parallelism are restored (a stop with a savepoint may hold rows whose batch was still in flight, which the stopping
     * job then committed). None by default.
     */
    default java.util.Set<Integer> applied(java.sql.Connection c, java.util.List<T> rows) throws java.sql.SQLException {
        return java.util.Set.of();
    }
}
