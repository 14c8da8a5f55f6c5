package io.sluice.core.model;

import java.util.List;
import java.util.Map;

/** Property changes for one subscription ({@code subscription-updates}, key {@code app_id}): {@code set} overwrites, {@code unset} removes. */
public record SubscriptionUpdate(String appId, String subscriptionId, Map<String, String> set, List<String> unset, long sentAt) {
}
