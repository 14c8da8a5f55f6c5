package io.sluice.core.model;

/** A push to send ({@code push-queue}, key {@code app_id:user_id}); {@code jobId} is deterministic. */
public record PushJob(String jobId, String appId, String userId, String campaignId, String message, long createdAt) {
    public String key() {
        return appId + ":" + userId;
    }
}
