package io.sluice.jobs.shards;

import io.sluice.jobs.common.DeadLetter;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;

/**
 * What {@link ShardedSink} needs to know about one kind of row: how to route it, how to merge two
 * buffered versions of the same row, how to write a batch (one statement shape, no commit), and what
 * a rejected row looks like on the dead-letter topic. Writes must be idempotent and guarded by a
 * monotonic version, so that a replay after a restore changes nothing a row already reflects.
 */
public interface ShardTable<T> extends Serializable {
    /** The app whose shard the row belongs to. */
    String appId(T row);

    /** The row's identity within its shard (any value with {@code equals} and {@code hashCode}): buffered rows with the same key are merged. */
    Object key(T row);

    /** {@code older} with {@code newer} folded in (may mutate and return {@code older}). */
    T merge(T older, T newer);

    /** Writes the rows on {@code c} inside the caller's transaction; the caller commits. */
    void write(Connection c, List<T> rows) throws SQLException;

    /** The Kafka partition the row's newest input came from, for {@code sluice_progress}. */
    int sourcePartition(T row);

    /** How many input records the row stands for. */
    long records(T row);

    /** Event time of the newest input the row reflects (epoch ms), for time lag. */
    long newestEventAt(T row);

    /** The dead letter for a row the shard rejected on its own; {@code reason} names the shard and the error. */
    DeadLetter rejected(T row, String reason);
}
