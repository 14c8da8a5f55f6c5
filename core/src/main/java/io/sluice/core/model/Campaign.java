package io.sluice.core.model;

/** A campaign ({@code campaigns}, compacted, key {@code campaign_id}): users with {@code minCount} {@code eventName} events within {@code windowMs} get {@code message}. */
public record Campaign(String campaignId, String appId, String eventName, int minCount, long windowMs, String message, int maxPerSecond, boolean active) {
}
