package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;

/**
 * A valid, on-time user event as the keyed operators see it: only what counting needs (no raw bytes,
 * no properties), so the shuffle stays small. {@code value} is 0 when the event has none.
 */
public final class CountedEvent {
    public String appId;
    public String userId;
    public String name;
    public long occurredAt;
    public double value;
    public int partition;
    public long offset;

    public CountedEvent() {
    }

    public static CountedEvent of(UserEvent e, int partition, long offset) {
        CountedEvent c = new CountedEvent();
        c.appId = e.appId();
        c.userId = e.userId();
        c.name = e.name();
        c.occurredAt = e.occurredAt();
        c.value = e.value() == null ? 0.0 : e.value();
        c.partition = partition;
        c.offset = offset;
        return c;
    }
}
