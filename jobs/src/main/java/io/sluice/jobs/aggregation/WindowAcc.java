package io.sluice.jobs.aggregation;

/** One event name's running aggregate within a {@link UserWindow}: in keyed state, and of the events buffered since the last emission. */
public final class WindowAcc {
    public long count;
    public double sum;
    public long newestAt;
    public int partition;

    public WindowAcc() {
    }

    void add(long occurredAt, double value, int sourcePartition) {
        count++;
        sum += value;
        newestAt = Math.max(newestAt, occurredAt);
        partition = sourcePartition;
    }

    void add(WindowAcc later) {
        count += later.count;
        sum += later.sum;
        newestAt = Math.max(newestAt, later.newestAt);
        partition = later.partition;
    }
}
