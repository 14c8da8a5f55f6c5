package io.sluice.jobs.subscriptions;

import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Json;
import io.sluice.jobs.shards.ShardTable;

import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code subscriptions} table for {@link io.sluice.jobs.shards.ShardedSink}: a batch of deltas is
 * one {@link #UPSERT} with array parameters. A row's version names its source: (source epoch, source
 * partition, offset of the newest update it reflects). A delta applies when the row's epoch is older
 * ({@link SourceGuard}: a new epoch is a new source), or when it has the row's epoch and partition and a
 * newer offset. Everything else is not applied, and the statement returns it with the row's version:
 * <ul>
 *   <li>same epoch and partition, offset not newer: a replay after a restore, a no-op (counted);</li>
 *   <li>same epoch, another partition: one subscription's updates in two partitions (a producer that does
 *   not key by {@code app_id}, or two partitioners), whose offsets cannot be ordered: a {@code validate}
 *   dead letter naming both partitions, and the row keeps its value;</li>
 *   <li>the row is in a newer epoch: an update of an older source arriving late, a {@code validate} dead letter;</li>
 *   <li>no row in the statement's snapshot, yet not inserted: another writer (a cancelled attempt not yet
 *   gone) inserted it meanwhile; written again, now against that row.</li>
 * </ul>
 * Inserts and updates carry the same guard, so a late write of a cancelled attempt never wins against a
 * newer one. A dead letter carries the delta as JSON ({@code {"set":{...},"unset":[...]}}), key
 * {@code app_id}, and the offset of its newest update; the reason gives the offsets it covers.
 */
public final class SubscriptionTable implements ShardTable<SubscriptionDelta> {
    private static final long serialVersionUID = 1L;

    static final String UPSERT = """
            WITH d AS (
                SELECT * FROM unnest(?::int[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::int[], ?::int[], ?::bigint[])
                    AS d(ord, app_id, subscription_id, set_json, unset_json, sent_ms, epoch, part, version)
            ), updated AS (
                UPDATE subscriptions s
                   SET properties = (s.properties - ARRAY(SELECT jsonb_array_elements_text(d.unset_json::jsonb))) || d.set_json::jsonb,
                       updated_at = to_timestamp(d.sent_ms / 1000.0),
                       source_epoch = d.epoch, source_partition = d.part, version = d.version
                  FROM d
                 WHERE s.app_id = d.app_id AND s.subscription_id = d.subscription_id
                   AND (s.source_epoch < d.epoch
                        OR (s.source_epoch = d.epoch AND coalesce(s.source_partition, d.part) = d.part AND s.version < d.version))
                RETURNING d.ord
            ), inserted AS (
                INSERT INTO subscriptions (app_id, subscription_id, properties, updated_at, source_epoch, source_partition, version)
                SELECT d.app_id, d.subscription_id, d.set_json::jsonb, to_timestamp(d.sent_ms / 1000.0), d.epoch, d.part, d.version FROM d
                 WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.ord = d.ord)
                ON CONFLICT (app_id, subscription_id) DO NOTHING
                RETURNING app_id, subscription_id
            ), rest AS MATERIALIZED (
                SELECT d.ord, d.app_id, d.subscription_id FROM d
                 WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.ord = d.ord)
                   AND NOT EXISTS (SELECT 1 FROM inserted i WHERE i.app_id = d.app_id AND i.subscription_id = d.subscription_id)
            )
            SELECT r.ord, s.source_epoch, s.source_partition, s.version
              FROM rest r LEFT JOIN subscriptions s ON s.app_id = r.app_id AND s.subscription_id = r.subscription_id
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
    public java.util.Set<Integer> applied(Connection c, List<SubscriptionDelta> rows) throws SQLException {
        // applied: the row is at this delta's epoch and partition with its version or a newer one (one writer writes a
        // key's deltas in order, so a newer version means this one was written before it), or at a newer epoch
        String sql = """
                SELECT d.ord FROM unnest(?::text[], ?::text[], ?::int[], ?::int[], ?::bigint[]) WITH ORDINALITY AS d(app_id, subscription_id, epoch, part, version, ord)
                  JOIN subscriptions s ON s.app_id = d.app_id AND s.subscription_id = d.subscription_id
                 WHERE s.source_epoch > d.epoch
                    OR (s.source_epoch = d.epoch AND s.source_partition = d.part AND s.version >= d.version)
                """;
        int n = rows.size();
        String[] apps = new String[n];
        String[] subs = new String[n];
        Integer[] epochs = new Integer[n];
        Integer[] parts = new Integer[n];
        Long[] versions = new Long[n];
        for (int i = 0; i < n; i++) {
            SubscriptionDelta d = rows.get(i);
            apps[i] = d.appId;
            subs[i] = d.subscriptionId;
            epochs[i] = d.epoch;
            parts[i] = d.partition;
            versions[i] = d.version;
        }
        java.util.Set<Integer> out = new java.util.HashSet<>();
        try (PreparedStatement st = c.prepareStatement(sql)) {
            st.setArray(1, c.createArrayOf("text", apps));
            st.setArray(2, c.createArrayOf("text", subs));
            st.setArray(3, c.createArrayOf("integer", epochs));
            st.setArray(4, c.createArrayOf("integer", parts));
            st.setArray(5, c.createArrayOf("bigint", versions));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    out.add((int) rs.getLong(1) - 1);
                }
            }
        }
        return out;
    }

    @Override
    public boolean mergeable(SubscriptionDelta older, SubscriptionDelta newer) {
        return older.sameSource(newer);
    }

    @Override
    public SubscriptionDelta merge(SubscriptionDelta older, SubscriptionDelta newer) {
        older.merge(newer);
        return older;
    }

    @Override
    public Written<SubscriptionDelta> write(Connection c, List<SubscriptionDelta> rows) throws SQLException {
        int n = rows.size();
        Integer[] ords = new Integer[n];
        String[] apps = new String[n];
        String[] subs = new String[n];
        String[] sets = new String[n];
        String[] unsets = new String[n];
        Long[] sent = new Long[n];
        Integer[] epochs = new Integer[n];
        Integer[] parts = new Integer[n];
        Long[] versions = new Long[n];
        for (int i = 0; i < n; i++) {
            SubscriptionDelta d = rows.get(i);
            ords[i] = i;
            apps[i] = d.appId;
            subs[i] = d.subscriptionId;
            sets[i] = Json.object(d.set);
            unsets[i] = Json.array(d.unset);
            sent[i] = d.newestSentAt;
            epochs[i] = d.epoch;
            parts[i] = d.partition;
            versions[i] = d.version;
        }
        int noOps = 0;
        List<DeadLetter> refused = new ArrayList<>();
        List<SubscriptionDelta> again = new ArrayList<>();
        try (PreparedStatement upsert = c.prepareStatement(UPSERT)) {
            upsert.setArray(1, c.createArrayOf("integer", ords));
            upsert.setArray(2, c.createArrayOf("text", apps));
            upsert.setArray(3, c.createArrayOf("text", subs));
            upsert.setArray(4, c.createArrayOf("text", sets));
            upsert.setArray(5, c.createArrayOf("text", unsets));
            upsert.setArray(6, c.createArrayOf("bigint", sent));
            upsert.setArray(7, c.createArrayOf("integer", epochs));
            upsert.setArray(8, c.createArrayOf("integer", parts));
            upsert.setArray(9, c.createArrayOf("bigint", versions));
            try (ResultSet rs = upsert.executeQuery()) {
                while (rs.next()) {
                    SubscriptionDelta d = rows.get(rs.getInt(1));
                    int rowEpoch = rs.getInt(2);
                    if (rs.wasNull()) {
                        again.add(d);
                        continue;
                    }
                    int rowPartition = rs.getInt(3);
                    boolean legacy = rs.wasNull();
                    long rowVersion = rs.getLong(4);
                    if (rowEpoch > d.epoch) {
                        refused.add(deadLetter(d, "validate", "the row is at source epoch " + rowEpoch + " (partition " + rowPartition
                                + ", offset " + rowVersion + "); an update of epoch " + d.epoch + " arriving now cannot be ordered against it"
                                + covers(d) + " (docs/operations.md#source-epochs)"));
                    } else if (rowEpoch == d.epoch && !legacy && rowPartition != d.partition) {
                        refused.add(deadLetter(d, "validate", "subscription " + d.appId + "/" + d.subscriptionId + " was written from partition "
                                + rowPartition + " (offset " + rowVersion + ") and this update came from partition " + d.partition
                                + covers(d) + ": one subscription's updates must stay in one partition; key records by app_id with the"
                                + " Java client's partitioner (docs/operations.md#keying)"));
                    } else {
                        noOps++;
                    }
                }
            }
        }
        return new Written<>(noOps, refused, again);
    }

    private static String covers(SubscriptionDelta d) {
        return ", offsets " + d.firstVersion + ".." + d.version + " of partition " + d.partition + " (" + d.updates + " updates)";
    }

    @Override
    public String sourceTopic() {
        return sourceTopic;
    }

    @Override
    public int sourceEpoch(SubscriptionDelta row) {
        return row.epoch;
    }

    @Override
    public int sourcePartition(SubscriptionDelta row) {
        return row.partition;
    }

    @Override
    public long sourceOffset(SubscriptionDelta row) {
        return row.version;
    }

    @Override
    public long newestEventAt(SubscriptionDelta row) {
        return row.newestSentAt;
    }

    @Override
    public DeadLetter rejected(SubscriptionDelta row, String reason) {
        return deadLetter(row, "shard-write", reason + covers(row));
    }

    private DeadLetter deadLetter(SubscriptionDelta row, String stage, String reason) {
        String value = "{\"app_id\":" + Json.string(row.appId) + ",\"subscription_id\":" + Json.string(row.subscriptionId)
                + ",\"set\":" + Json.object(row.set) + ",\"unset\":" + Json.array(row.unset) + ",\"updates\":" + row.updates + "}";
        return new DeadLetter(sourceTopic, row.partition, row.version, bytes(row.appId), bytes(value), stage, reason);
    }

    private static byte[] bytes(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void writeRow(DataOutputView out, SubscriptionDelta row) throws IOException {
        SubscriptionDelta.write(row, out);
    }

    @Override
    public SubscriptionDelta readRow(DataInputView in) throws IOException {
        return SubscriptionDelta.read(in);
    }
}
