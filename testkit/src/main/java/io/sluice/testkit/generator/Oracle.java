package io.sluice.testkit.generator;

import io.sluice.routing.PushJobIds;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.model.Campaign;
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
    private long lateEvents;
    private UserEvent idleReturnEvent;
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

    /**
     * A well-formed event generated late ({@code generator.late-by} behind its neighbours, far beyond any window and
     * allowed lateness a test uses): a job dead-letters it, so it is not among the {@link #events()}.
     */
    void recordLateEvent(String topic, UserEvent e) {
        goodByTopic.merge(topic, 1L, Long::sum);
        lateEvents++;
    }

    /** The idle partition's first event back ({@code generator.idle-partition}), a late one; null if none. */
    public UserEvent idleReturnEvent() {
        return idleReturnEvent;
    }

    void recordIdleReturn(UserEvent e) {
        idleReturnEvent = e;
    }

    /** Well-formed events that were generated late, see {@link #recordLateEvent}. */
    public long lateEvents() {
        return lateEvents;
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

    /** A window's expected {@code user_event_counts} row. */
    public record WindowRow(long count, double sum) {
    }

    /**
     * The expected {@code user_event_counts} rows of the kept events (all on time), keyed
     * {@code app/user/name/window start (epoch ms)}.
     */
    public Map<String, WindowRow> windowCounts(long windowMs) {
        Map<String, long[]> counts = new HashMap<>();
        Map<String, Double> sums = new HashMap<>();
        for (UserEvent e : events) {
            String key = e.appId() + "/" + e.userId() + "/" + e.name() + "/" + Math.floorDiv(e.occurredAt(), windowMs) * windowMs;
            counts.computeIfAbsent(key, k -> new long[1])[0]++;
            sums.merge(key, e.value() == null ? 0.0 : e.value(), Double::sum);
        }
        Map<String, WindowRow> out = new HashMap<>();
        counts.forEach((k, n) -> out.put(k, new WindowRow(n[0], sums.get(k))));
        return out;
    }

    /**
     * The push jobs the kept events should cause, by job id: a user's {@code min_count}-th
     * {@code event_name} event of an active campaign's app within one campaign window, in production
     * order (which is offset order per user). Value: {@code campaign/user/created_at}.
     */
    public Map<String, String> pushJobs(List<Campaign> campaigns) {
        Map<String, String> out = new HashMap<>();
        Map<List<String>, Integer> progress = new HashMap<>();
        for (UserEvent e : events) {
            for (Campaign c : campaigns) {
                if (!c.active() || !c.appId().equals(e.appId()) || !c.eventName().equals(e.name())) {
                    continue;
                }
                long start = Math.floorDiv(e.occurredAt(), c.windowMs()) * c.windowMs();
                int n = progress.merge(List.of(c.appId(), c.campaignId(), e.userId(), Long.toString(start)), 1, Integer::sum);
                if (n == c.minCount()) {
                    out.put(PushJobIds.of(c.appId(), c.campaignId(), e.userId(), start), c.campaignId() + "/" + e.userId() + "/" + e.occurredAt());
                }
            }
        }
        return out;
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
