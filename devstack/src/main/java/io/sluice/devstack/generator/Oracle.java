package io.sluice.devstack.generator;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.model.UserEvent;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a bounded generator run should leave behind, computed in-process from the records generated
 * (not from any job): the final properties of every subscription (updates applied one by one in
 * production order, which is offset order per app key), every well-formed user event, and the
 * malformed records by topic. Tests and benchmarks compare Postgres and the topics with it.
 */
public final class Oracle {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<SubscriptionKey, TreeMap<String, String>> subscriptions = new HashMap<>();
    private final List<UserEvent> events = new ArrayList<>();
    private final Map<String, Long> goodByTopic = new TreeMap<>();
    private final Map<String, Long> malformedByTopic = new TreeMap<>();
    private final List<SubscriptionUpdate> updates = new ArrayList<>();
    private final boolean keepEvents;
    private final boolean keepUpdates;

    public record SubscriptionKey(String appId, String subscriptionId) {
    }

    public Oracle(boolean keepEvents) {
        this(keepEvents, false);
    }

    /** {@code keepEvents}/{@code keepUpdates}: also keep every well-formed event/update, in production order. */
    public Oracle(boolean keepEvents, boolean keepUpdates) {
        this.keepEvents = keepEvents;
        this.keepUpdates = keepUpdates;
    }

    void recordUpdate(String topic, SubscriptionUpdate u) {
        goodByTopic.merge(topic, 1L, Long::sum);
        TreeMap<String, String> props = subscriptions.computeIfAbsent(new SubscriptionKey(u.appId(), u.subscriptionId()), k -> new TreeMap<>());
        props.putAll(u.set());
        u.unset().forEach(props::remove);
        if (keepUpdates) {
            updates.add(u);
        }
    }

    void recordEvent(String topic, UserEvent e) {
        goodByTopic.merge(topic, 1L, Long::sum);
        if (keepEvents) {
            events.add(e);
        }
    }

    void recordOther(String topic) {
        goodByTopic.merge(topic, 1L, Long::sum);
    }

    void recordMalformed(String topic) {
        malformedByTopic.merge(topic, 1L, Long::sum);
    }

    /** Expected final properties per subscription; a subscription whose every key was unset has an empty map. */
    public Map<SubscriptionKey, TreeMap<String, String>> subscriptions() {
        return subscriptions;
    }

    public List<UserEvent> events() {
        return events;
    }

    /** Every well-formed update in production order, if kept. */
    public List<SubscriptionUpdate> updates() {
        return updates;
    }

    public long good(String topic) {
        return goodByTopic.getOrDefault(topic, 0L);
    }

    public long malformed(String topic) {
        return malformedByTopic.getOrDefault(topic, 0L);
    }

    public long malformedTotal() {
        return malformedByTopic.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Writes the expected subscription rows as JSON lines: {@code {"app_id":..,"subscription_id":..,"properties":{..}}}. */
    public void writeSubscriptions(Path file) throws IOException {
        try (BufferedWriter w = Files.newBufferedWriter(file)) {
            for (String line : new TreeMap<>(jsonLinesByKey()).values()) {
                w.write(line);
                w.newLine();
            }
        }
    }

    private Map<String, String> jsonLinesByKey() throws IOException {
        Map<String, String> out = new HashMap<>();
        for (var e : subscriptions.entrySet()) {
            var node = JSON.createObjectNode().put("app_id", e.getKey().appId()).put("subscription_id", e.getKey().subscriptionId());
            node.set("properties", JSON.valueToTree(e.getValue()));
            out.put(e.getKey().appId() + "\u0000" + e.getKey().subscriptionId(), JSON.writeValueAsString(node));
        }
        return out;
    }
}
