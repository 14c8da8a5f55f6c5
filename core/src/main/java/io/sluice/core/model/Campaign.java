package io.sluice.core.model;

/**
 * A campaign ({@code campaigns}, compacted, key {@link #keyOf}): users of {@code appId} with {@code minCount}
 * {@code eventName} events within {@code windowMs} get {@code message}. A campaign id is unique within its app.
 */
public record Campaign(String campaignId, String appId, String eventName, int minCount, long windowMs, String message, int maxPerSecond, boolean active) {
    /** The longest campaign window: 31 days. */
    public static final long MAX_WINDOW_MS = 31L * 86_400_000;

    /** The record key of {@code campaigns}. */
    public String key() {
        return keyOf(appId, campaignId);
    }

    /**
     * The record key of {@code campaigns}: {@code app_id:campaign_id}. A tombstone's key is split at its first
     * {@code :}; campaign ids may hold {@code :}, app ids that hold one cannot be deleted by a tombstone (send
     * {@code active: false} instead).
     */
    public static String keyOf(String appId, String campaignId) {
        return appId + ":" + campaignId;
    }

    /** The campaign's key in Flink state: (app, campaign), {@link StateKeys}. */
    public String stateKey() {
        return StateKeys.of(appId, campaignId);
    }
}
