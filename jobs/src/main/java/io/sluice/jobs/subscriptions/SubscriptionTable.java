package io.sluice.jobs.subscriptions;

import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Json;
import io.sluice.jobs.shards.ShardTable;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.List;

/**
 * The {@code subscriptions} table for {@link io.sluice.jobs.shards.ShardedSink}: a batch of deltas
 * is one {@link #UPSERT} with array parameters. {@code version} is the Kafka offset of the newest
 * update a row reflects; a delta only applies to a row with an older version, so replays after a
 * restore are no-ops and rows never move backwards. A rejected delta's dead letter carries the delta
 * as JSON ({@code {"set":{...},"unset":[...]}}), key {@code app_id}, and the offset of its newest update.
 */
public final class SubscriptionTable implements ShardTable<SubscriptionDelta> {
    private static final long serialVersionUID = 1L;

    /** Update rows whose stored version is older, insert new rows; an older or equal version is a no-op. */
    static final String UPSERT = """
            WITH d AS (
                SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])
                    AS d(app_id, subscription_id, set_json, unset_json, sent_ms, version)
            ), updated AS (
                UPDATE subscriptions s
                   SET properties = (s.properties - ARRAY(SELECT jsonb_array_elements_text(d.unset_json::jsonb))) || d.set_json::jsonb,
                       updated_at = to_timestamp(d.sent_ms / 1000.0),
                       version = d.version
                  FROM d
                 WHERE s.app_id = d.app_id AND s.subscription_id = d.subscription_id AND s.version < d.version
                RETURNING s.app_id
            )
            INSERT INTO subscriptions (app_id, subscription_id, properties, updated_at, version)
            SELECT d.app_id, d.subscription_id, d.set_json::jsonb, to_timestamp(d.sent_ms / 1000.0), d.version FROM d
            ON CONFLICT (app_id, subscription_id) DO NOTHING
            """;

    private final String sourceTopic;

    public SubscriptionTable(String sourceTopic) {
        this.sourceTopic = sourceTopic;
    }

    @Override
    public String appId(SubscriptionDelta row) {
        return row.appId;
    }

    @Override
    public Object key(SubscriptionDelta row) {
        return row.key();
    }

    @Override
    public SubscriptionDelta merge(SubscriptionDelta older, SubscriptionDelta newer) {
        older.merge(newer);
        return older;
    }

    @Override
    public void write(Connection c, List<SubscriptionDelta> rows) throws SQLException {
        int n = rows.size();
        String[] apps = new String[n];
        String[] subs = new String[n];
        String[] sets = new String[n];
        String[] unsets = new String[n];
        Long[] sent = new Long[n];
        Long[] versions = new Long[n];
        for (int i = 0; i < n; i++) {
            SubscriptionDelta d = rows.get(i);
            apps[i] = d.appId;
            subs[i] = d.subscriptionId;
            sets[i] = Json.object(d.set);
            unsets[i] = Json.array(d.unset);
            sent[i] = d.newestSentAt;
            versions[i] = d.version;
        }
        try (PreparedStatement upsert = c.prepareStatement(UPSERT)) {
            upsert.setArray(1, c.createArrayOf("text", apps));
            upsert.setArray(2, c.createArrayOf("text", subs));
            upsert.setArray(3, c.createArrayOf("text", sets));
            upsert.setArray(4, c.createArrayOf("text", unsets));
            upsert.setArray(5, c.createArrayOf("bigint", sent));
            upsert.setArray(6, c.createArrayOf("bigint", versions));
            upsert.executeUpdate();
        }
    }

    @Override
    public int sourcePartition(SubscriptionDelta row) {
        return row.partition;
    }

    @Override
    public long records(SubscriptionDelta row) {
        return row.updates;
    }

    @Override
    public long newestEventAt(SubscriptionDelta row) {
        return row.newestSentAt;
    }

    @Override
    public DeadLetter rejected(SubscriptionDelta row, String reason) {
        String value = "{\"app_id\":" + Json.string(row.appId) + ",\"subscription_id\":" + Json.string(row.subscriptionId)
                + ",\"set\":" + Json.object(row.set) + ",\"unset\":" + Json.array(row.unset) + ",\"updates\":" + row.updates + "}";
        return new DeadLetter(sourceTopic, row.partition, row.version, bytes(row.appId), bytes(value), "shard-write", reason);
    }

    private static byte[] bytes(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }
}
