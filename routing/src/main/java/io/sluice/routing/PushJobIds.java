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
     * The job id of a user entering a campaign's segment in the campaign window starting at
     * {@code windowStartMs}: a name-based UUID (RFC 4122 version 3) of the three.
     */
    public static String of(String campaignId, String userId, long windowStartMs) {
        String name = "sluice-push\n" + campaignId + "\n" + userId + "\n" + windowStartMs;
        return UUID.nameUUIDFromBytes(name.getBytes(StandardCharsets.UTF_8)).toString();
    }
}
