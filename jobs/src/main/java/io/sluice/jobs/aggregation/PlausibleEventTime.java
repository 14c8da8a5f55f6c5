package io.sluice.jobs.aggregation;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.UserEvent;
import io.sluice.jobs.common.DecodingDeserializer;

import java.time.Duration;
import java.time.Instant;

/**
 * An {@code occurred_at} the job can believe: at most {@code aggregation.max-event-age} behind and
 * {@code aggregation.max-event-lead} ahead of the wall clock when the record is read (0 turns a bound
 * off). Runs in the source, before the timestamp is assigned, so a device clock in 2100 or a producer
 * sending microseconds never moves a watermark; the event is a {@code validate} dead letter instead.
 * A replay after a restore judges again by the clock then: an event read more than the age after it was
 * first counted would be a dead letter the second time, which is why the default age (30 days) is far
 * beyond any checkpoint a job restores.
 */
public final class PlausibleEventTime implements DecodingDeserializer.Check<UserEvent> {
    private static final long serialVersionUID = 1L;

    private final long maxAgeMs;
    private final long maxLeadMs;

    public PlausibleEventTime(long maxAgeMs, long maxLeadMs) {
        this.maxAgeMs = maxAgeMs;
        this.maxLeadMs = maxLeadMs;
    }

    static PlausibleEventTime of(SluiceConfig.Aggregation a) {
        return new PlausibleEventTime(a.maxEventAgeMs(), a.maxEventLeadMs());
    }

    @Override
    public String problem(UserEvent e) {
        return problem(e.occurredAt(), System.currentTimeMillis());
    }

    String problem(long occurredAt, long now) {
        if (maxAgeMs > 0 && occurredAt < now - maxAgeMs) {
            return "occurred_at " + occurredAt + " (" + Instant.ofEpochMilli(occurredAt) + ") is " + Duration.ofMillis(now - occurredAt)
                    + " behind the wall clock " + Instant.ofEpochMilli(now) + ", more than aggregation.max-event-age " + Duration.ofMillis(maxAgeMs)
                    + " (a backfill that old needs the key raised, or 0)";
        }
        if (maxLeadMs > 0 && occurredAt > now + maxLeadMs) {
            return "occurred_at " + occurredAt + " (" + Instant.ofEpochMilli(occurredAt) + ") is " + Duration.ofMillis(occurredAt - now)
                    + " ahead of the wall clock " + Instant.ofEpochMilli(now) + ", more than aggregation.max-event-lead " + Duration.ofMillis(maxLeadMs)
                    + " (a wrong device clock, or a producer sending microseconds or nanoseconds?)";
        }
        return null;
    }
}
