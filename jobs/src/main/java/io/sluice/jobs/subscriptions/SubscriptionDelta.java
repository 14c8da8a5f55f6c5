package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;

/**
 * The net effect of one or more consecutive updates to one subscription: keys to set, keys to
 * remove (disjoint), and {@code version}, the Kafka offset of the newest update merged in. Merging a
 * newer delta keeps last-writer-wins per key, so applying a merged delta equals applying its
 * updates one by one; and re-applying a delta whose prefix a row already reflects changes nothing
 * the row did not already have (see README, "Ordering and exactly-once").
 */
public class SubscriptionDelta {
    public String appId;
    public String subscriptionId;
    public HashMap<String, String> set = new HashMap<>();
    public ArrayList<String> unset = new ArrayList<>();
    public long version;
    public long newestSentAt;
    public int partition;
    /** How many source updates this delta stands for. */
    public long updates;
    /** When the coalescer's timer for this delta fires (processing time); 0 outside the coalescer. */
    public long flushAt;

    public SubscriptionDelta() {
    }

    public static SubscriptionDelta of(SubscriptionUpdate u, int partition, long offset) {
        SubscriptionDelta d = new SubscriptionDelta();
        d.appId = u.appId();
        d.subscriptionId = u.subscriptionId();
        d.set.putAll(u.set());
        for (String k : u.unset()) {
            if (!d.set.containsKey(k) && !d.unset.contains(k)) {
                d.unset.add(k);
            }
        }
        d.version = offset;
        d.newestSentAt = u.sentAt();
        d.partition = partition;
        d.updates = 1;
        return d;
    }

    /** Folds a newer delta of the same subscription into this one. */
    public void merge(SubscriptionDelta newer) {
        for (String k : newer.unset) {
            set.remove(k);
            if (!unset.contains(k)) {
                unset.add(k);
            }
        }
        for (Map.Entry<String, String> e : newer.set.entrySet()) {
            set.put(e.getKey(), e.getValue());
            unset.remove(e.getKey());
        }
        version = Math.max(version, newer.version);
        newestSentAt = Math.max(newestSentAt, newer.newestSentAt);
        partition = newer.partition;
        updates += newer.updates;
    }

    public String key() {
        return key(appId, subscriptionId);
    }

    public static String key(String appId, String subscriptionId) {
        return appId + '\u0000' + subscriptionId;
    }

    @Override
    public String toString() {
        return "SubscriptionDelta{" + appId + "/" + subscriptionId + " set=" + set + " unset=" + unset + " v=" + version + " n=" + updates + "}";
    }
}
