package io.sluice.routing;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * The deterministic id of a push job, shared by the aggregation job, the SQL function
 * {@code PUSH_JOB_ID} and any consumer that deduplicates: the same inputs give the same id everywhere.
 */
public final class PushJobIds {
    private PushJobIds() {
    }

    /**
     * The job id of a user of an app entering a campaign's segment in the campaign window starting at
     * {@code windowStartMs}: a name-based UUID (RFC 4122 version 3) of the four. A campaign id is unique within
     * its app only, so the app is part of it. Each id goes in with its length, so no two different
     * (app, campaign, user) can make the same name whatever characters the ids hold.
     */
    public static String of(String appId, String campaignId, String userId, long windowStartMs) {
        StringBuilder name = new StringBuilder("sluice-push-v2");
        for (String id : new String[] {appId, campaignId, userId}) {
            name.append('\n').append(id.length()).append(':').append(id);
        }
        name.append('\n').append(windowStartMs);
        return UUID.nameUUIDFromBytes(name.toString().getBytes(StandardCharsets.UTF_8)).toString();
    }
}
