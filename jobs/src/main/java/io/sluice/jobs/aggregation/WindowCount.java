package io.sluice.jobs.aggregation;

/**
 * One {@code user_event_counts} row as of some point: the window's {@code count} and {@code sum} so
 * far (counts only grow, so the count doubles as the row's version), plus bookkeeping for the sink:
 * {@code records} events not yet reported in an earlier emission, the newest event time, and the
 * source partition and offset of the newest event (-1 when unknown).
 */
public final class WindowCount {
    public String appId;
    public String userId;
    public String name;
    public long windowStart;
    public long windowEnd;
    public long count;
    public double sum;
    public long records;
    public long newestAt;
    public int partition;
    public long offset;

    public WindowCount() {
    }

    public WindowCount(String appId, String userId, String name, long windowStart, long windowEnd, long count, double sum,
                       long records, long newestAt, int partition, long offset) {
        this.appId = appId;
        this.userId = userId;
        this.name = name;
        this.windowStart = windowStart;
        this.windowEnd = windowEnd;
        this.count = count;
        this.sum = sum;
        this.records = records;
        this.newestAt = newestAt;
        this.partition = partition;
        this.offset = offset;
    }

    /** The row's identity: app, user, event name and window (a record, so the sink's merge map hashes fields, not a built string). */
    public Key key() {
        return new Key(appId, userId, name, windowStart);
    }

    public record Key(String appId, String userId, String name, long windowStart) {
    }

    @Override
    public String toString() {
        return appId + "/" + userId + "/" + name + "@" + windowStart + ": count " + count + ", sum " + sum;
    }
}
