package io.sluice.core.model;

/** A push to send ({@code push-queue}, key {@code app_id:user_id}); {@code jobId} is deterministic ({@link io.sluice.routing.PushJobIds}). */
public record PushJob(String jobId, String appId, String userId, String campaignId, String message, long createdAt) {
    public String key() {
        return UserEvent.keyOf(appId, userId);
    }
}
