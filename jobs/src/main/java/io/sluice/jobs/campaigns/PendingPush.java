package io.sluice.jobs.campaigns;

import io.sluice.routing.PushJobIds;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;

/** A push job on its way to the pacer, with the pacing rate of its campaign at the time it was made. */
public final class PendingPush {
    public String jobId;
    public String appId;
    public String userId;
    public String campaignId;
    public String message;
    public long createdAt;
    public int maxPerSecond;

    public PendingPush() {
    }

    /** The push for {@code userId} entering {@code c}'s segment in the campaign window starting at {@code windowStart}, at event time {@code at}. */
    public static PendingPush of(Campaign c, String userId, long windowStart, long at) {
        PendingPush p = new PendingPush();
        p.jobId = PushJobIds.of(c.appId(), c.campaignId(), userId, windowStart);
        p.appId = c.appId();
        p.userId = userId;
        p.campaignId = c.campaignId();
        p.message = c.message();
        p.createdAt = at;
        p.maxPerSecond = c.maxPerSecond();
        return p;
    }

    public PushJob toPushJob() {
        return new PushJob(jobId, appId, userId, campaignId, message, createdAt);
    }
}
