package io.sluice.jobs.aggregation;

/**
 * Events of one user, event name and window added up before the shuffle ({@link LocalWindowCounts}):
 * what crosses the network to {@link WindowCounter} instead of every event.
 */
public final class WindowPartial {
    public String appId;
    public String userId;
    public String name;
    public long windowStart;
    public long count;
    public double sum;
    public long newestAt;
    public int partition;

    public WindowPartial() {
    }

    static WindowPartial of(CountedEvent e, long windowStart) {
        WindowPartial p = new WindowPartial();
        p.appId = e.appId;
        p.userId = e.userId;
        p.name = e.name;
        p.windowStart = windowStart;
        p.newestAt = Long.MIN_VALUE;
        return p;
    }

    void add(CountedEvent e) {
        count++;
        sum += e.value;
        newestAt = Math.max(newestAt, e.occurredAt);
        partition = e.partition;
    }

    /** The keyed operators' key: {@code app_id:user_id}, as {@link CountedEvent#userKey()}. */
    public String userKey() {
        return appId + ":" + userId;
    }
}
