package io.sluice.jobs.aggregation;

import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Json;
import io.sluice.jobs.shards.ShardTable;

import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.List;

/**
 * The {@code user_event_counts} table for {@link io.sluice.jobs.shards.ShardedSink}: a batch of
 * window rows is one {@link #UPSERT} with array parameters. A window's count only grows, so it is
 * the row's version: an upsert only replaces a row holding a smaller count, which makes replays after
 * a restore no-ops and keeps rows from moving backwards. A rejected row's dead letter is the row as
 * JSON, key {@code app_id:user_id}.
 */
public final class UserEventCountsTable implements ShardTable<WindowCount> {
    private static final long serialVersionUID = 1L;

    static final String UPSERT = """
            INSERT INTO user_event_counts AS c (app_id, user_id, event_name, window_start, window_end, count, sum)
            SELECT app_id, user_id, event_name, to_timestamp(start_ms / 1000.0), to_timestamp(end_ms / 1000.0), n, s
              FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::float8[])
                AS d(app_id, user_id, event_name, start_ms, end_ms, n, s)
            ON CONFLICT (app_id, user_id, event_name, window_start) DO UPDATE
               SET count = EXCLUDED.count, sum = EXCLUDED.sum
             WHERE c.count < EXCLUDED.count
            """;

    private final String sourceTopic;

    public UserEventCountsTable(String sourceTopic) {
        this.sourceTopic = sourceTopic;
    }

    @Override
    public String appId(WindowCount row) {
        return row.appId;
    }

    @Override
    public Object key(WindowCount row) {
        return row.key();
    }

    @Override
    public WindowCount merge(WindowCount older, WindowCount newer) {
        WindowCount kept = newer.count >= older.count ? newer : older;
        WindowCount dropped = kept == newer ? older : newer;
        kept.records += dropped.records;
        kept.newestAt = Math.max(kept.newestAt, dropped.newestAt);
        if (dropped.partition == kept.partition) {
            kept.offset = Math.max(kept.offset, dropped.offset);
        }
        return kept;
    }

    @Override
    public Written<WindowCount> write(Connection c, List<WindowCount> rows) throws SQLException {
        int n = rows.size();
        String[] apps = new String[n];
        String[] users = new String[n];
        String[] names = new String[n];
        Long[] starts = new Long[n];
        Long[] ends = new Long[n];
        Long[] counts = new Long[n];
        Double[] sums = new Double[n];
        for (int i = 0; i < n; i++) {
            WindowCount w = rows.get(i);
            apps[i] = w.appId;
            users[i] = w.userId;
            names[i] = w.name;
            starts[i] = w.windowStart;
            ends[i] = w.windowEnd;
            counts[i] = w.count;
            sums[i] = w.sum;
        }
        try (PreparedStatement upsert = c.prepareStatement(UPSERT)) {
            upsert.setArray(1, c.createArrayOf("text", apps));
            upsert.setArray(2, c.createArrayOf("text", users));
            upsert.setArray(3, c.createArrayOf("text", names));
            upsert.setArray(4, c.createArrayOf("bigint", starts));
            upsert.setArray(5, c.createArrayOf("bigint", ends));
            upsert.setArray(6, c.createArrayOf("bigint", counts));
            upsert.setArray(7, c.createArrayOf("float8", sums));
            return Written.applied(n - upsert.executeUpdate());
        }
    }

    @Override
    public String sourceTopic() {
        return sourceTopic;
    }

    @Override
    public int sourcePartition(WindowCount row) {
        return row.partition;
    }

    @Override
    public long sourceOffset(WindowCount row) {
        return row.offset;
    }

    @Override
    public long newestEventAt(WindowCount row) {
        return row.newestAt;
    }

    @Override
    public DeadLetter rejected(WindowCount row, String reason) {
        String value = "{\"app_id\":" + Json.string(row.appId) + ",\"user_id\":" + Json.string(row.userId) + ",\"event_name\":" + Json.string(row.name)
                + ",\"window_start\":" + row.windowStart + ",\"window_end\":" + row.windowEnd + ",\"count\":" + row.count + ",\"sum\":" + row.sum + "}";
        return new DeadLetter(sourceTopic, row.partition, row.offset, bytes(row.appId + ":" + row.userId), bytes(value), "shard-write", reason);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** A row holds the window's absolute count and sum, and the guard refuses a smaller count: any order converges. */
    @Override
    public boolean orderSensitive() {
        return false;
    }

    @Override
    public void writeRow(DataOutputView out, WindowCount row) throws IOException {
        StringValue.writeString(row.appId, out);
        StringValue.writeString(row.userId, out);
        StringValue.writeString(row.name, out);
        out.writeLong(row.windowStart);
        out.writeLong(row.windowEnd);
        out.writeLong(row.count);
        out.writeDouble(row.sum);
        out.writeLong(row.records);
        out.writeLong(row.newestAt);
        out.writeInt(row.partition);
        out.writeLong(row.offset);
    }

    @Override
    public WindowCount readRow(DataInputView in) throws IOException {
        return new WindowCount(StringValue.readString(in), StringValue.readString(in), StringValue.readString(in), in.readLong(), in.readLong(),
                in.readLong(), in.readDouble(), in.readLong(), in.readLong(), in.readInt(), in.readLong());
    }
}
