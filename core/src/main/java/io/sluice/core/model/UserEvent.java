package io.sluice.core.model;

import java.util.Map;

/** One thing a user did ({@code user-events}, key {@code app_id:user_id}). {@code value} and {@code properties} may be null. */
public record UserEvent(String appId, String userId, String name, long occurredAt, Double value, Map<String, String> properties) {
    public String key() {
        return keyOf(appId, userId);
    }

    /** The record key of {@code user-events} and {@code push-queue}: {@code app_id:user_id} (the job's key is {@link StateKeys#of}). */
    public static String keyOf(String appId, String userId) {
        return appId + ":" + userId;
    }
}
