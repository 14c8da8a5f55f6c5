package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;

import java.util.Arrays;

/**
 * The on-time events of one (user, event name) since the last flush of {@link LocalEventBundles}, in
 * arrival (offset) order: the ids once, then the event time and value of each event. What crosses the
 * network to {@link UserActivityOperator} instead of one record per event, so the shuffle carries
 * two numbers per event instead of three strings.
 */
public final class EventBundle {
    public String appId;
    public String userId;
    public String name;
    /** Source partition of the newest event. */
    public int partition;
    public int size;
    public long[] times;
    public double[] values;

    public EventBundle() {
    }

    static EventBundle of(CountedEvent e) {
        EventBundle b = new EventBundle();
        b.appId = e.appId;
        b.userId = e.userId;
        b.name = e.name;
        b.times = new long[4];
        b.values = new double[4];
        return b;
    }

    void add(CountedEvent e) {
        if (size == times.length) {
            times = Arrays.copyOf(times, size * 2);
            values = Arrays.copyOf(values, size * 2);
        }
        times[size] = e.occurredAt;
        values[size] = e.value;
        size++;
        partition = e.partition;
    }

    /** Drops the unused tail of the arrays before the bundle is serialized. */
    EventBundle trimmed() {
        if (times.length != size) {
            times = Arrays.copyOf(times, size);
            values = Arrays.copyOf(values, size);
        }
        return this;
    }

    /** The keyed operators' key: {@code app_id:user_id} ({@link UserEvent#keyOf}). */
    public String userKey() {
        return UserEvent.keyOf(appId, userId);
    }
}
