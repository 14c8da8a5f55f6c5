package io.sluice.jobs.aggregation;

/** One event name's running aggregate within a {@link UserWindow}: in keyed state, and of the events buffered since the last emission. */
public final class WindowAcc {
    public long count;
    public double sum;
    public long newestAt;
    public int partition;
    /** Newest source offset of the buffered events, for the sink's progress; not kept in state (-1 there). */
    public transient long offset = -1;

    public WindowAcc() {
    }

    void add(long occurredAt, double value, int sourcePartition, long sourceOffset) {
        count++;
        sum += value;
        newestAt = Math.max(newestAt, occurredAt);
        partition = sourcePartition;
        offset = sourceOffset;
    }

    void add(WindowAcc later) {
        count += later.count;
        sum += later.sum;
        newestAt = Math.max(newestAt, later.newestAt);
        partition = later.partition;
    }
}
