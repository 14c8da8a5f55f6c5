package io.sluice.core.model;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/** A push to send ({@code push-queue}, key {@code app_id:user_id}); {@code jobId} is deterministic. */
public record PushJob(String jobId, String appId, String userId, String campaignId, String message, long createdAt) {
    public String key() {
        return UserEvent.keyOf(appId, userId);
    }

    /**
     * The job id of a user entering a campaign's segment in the campaign window starting at
     * {@code windowStartMs}: a name-based UUID (RFC 4122 version 3) of the three, so the same inputs
     * give the same id in the job, in SQL ({@code PUSH_JOB_ID}) and in any consumer that deduplicates.
     */
    public static String jobIdOf(String campaignId, String userId, long windowStartMs) {
        String name = "sluice-push\n" + campaignId + "\n" + userId + "\n" + windowStartMs;
        return UUID.nameUUIDFromBytes(name.getBytes(StandardCharsets.UTF_8)).toString();
    }
}
