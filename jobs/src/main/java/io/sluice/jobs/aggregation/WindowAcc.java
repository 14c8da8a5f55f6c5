package io.sluice.jobs.aggregation;

/** A window's running aggregate in keyed state (and of the events buffered since the last flush). */
public final class WindowAcc {
    public long count;
    public double sum;
    public long newestAt;
    public int partition;

    public WindowAcc() {
    }

    void add(WindowPartial p) {
        count += p.count;
        sum += p.sum;
        newestAt = Math.max(newestAt, p.newestAt);
        partition = p.partition;
    }

    void add(WindowAcc later) {
        count += later.count;
        sum += later.sum;
        newestAt = Math.max(newestAt, later.newestAt);
        partition = later.partition;
    }
}
