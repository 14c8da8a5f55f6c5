package io.sluice.jobs.subscriptions;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.routing.ShardRouter;
import io.sluice.jobs.common.Json;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes subscription deltas to the shard of their app. In: {@link SubscriptionDelta}s, each
 * subscription's in order (the writer sits right after the keyed coalescer). Each writer buffers per
 * shard, merging deltas of the same subscription again, and writes a shard's buffer as one
 * statement in one transaction ({@link #UPSERT}: arrays unnested, guarded by {@code version}),
 * together with the job's {@code sluice_progress} row: when the buffer reaches
 * {@code subscriptions.flush-max-rows}, every {@code subscriptions.flush-interval}, and on Flink's
 * {@code flush} before each checkpoint. A shard that fails is retried with backoff (1 s doubling to
 * 30 s) on a new connection; the writer blocks meanwhile, which is backpressure, not loss.
 * Metrics per shard ({@code shard=<i>}): rowsWritten, batches, lastBatchMillis, timeLagMs.
 */
public final class ShardedUpsertSink implements Sink<SubscriptionDelta> {
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

    static final String PROGRESS = """
            INSERT INTO sluice_progress (job, source_partition, records, newest_event_at, committed_at)
            SELECT ?, p, r, to_timestamp(n / 1000.0), now() FROM unnest(?::int[], ?::bigint[], ?::bigint[]) AS x(p, r, n)
            ON CONFLICT (job, source_partition) DO UPDATE
               SET records = sluice_progress.records + EXCLUDED.records,
                   newest_event_at = greatest(sluice_progress.newest_event_at, EXCLUDED.newest_event_at),
                   committed_at = now()
            """;

    private final SluiceConfig config;
    private final String job;

    public ShardedUpsertSink(SluiceConfig config, String job) {
        this.config = config;
        this.job = job;
    }

    @Override
    public SinkWriter<SubscriptionDelta> createWriter(WriterInitContext context) {
        return new Writer(config, job, context.getProcessingTimeService(), context.metricGroup());
    }

    static final class Writer implements SinkWriter<SubscriptionDelta> {
        private static final Logger LOG = LoggerFactory.getLogger(Writer.class);

        private final SluiceConfig config;
        private final String job;
        private final ShardRouter router;
        private final List<Map<String, SubscriptionDelta>> buffers = new ArrayList<>();
        private final Connection[] connections;
        private final Counter[] rowsWritten;
        private final Counter[] batches;
        private final long[] lastBatchMillis;
        private final long[] newestCommittedSentAt;
        private final ProcessingTimeService time;
        private int buffered;

        Writer(SluiceConfig config, String job, ProcessingTimeService time, MetricGroup metrics) {
            this.config = config;
            this.job = job;
            this.router = config.router();
            int shards = config.shards().list().size();
            this.connections = new Connection[shards];
            this.rowsWritten = new Counter[shards];
            this.batches = new Counter[shards];
            this.lastBatchMillis = new long[shards];
            this.newestCommittedSentAt = new long[shards];
            this.time = time;
            for (int i = 0; i < shards; i++) {
                buffers.add(new LinkedHashMap<>());
                MetricGroup g = metrics.addGroup("shard", String.valueOf(i));
                rowsWritten[i] = g.counter("rowsWritten");
                batches[i] = g.counter("batches");
                final int shard = i;
                g.gauge("lastBatchMillis", () -> lastBatchMillis[shard]);
                g.gauge("timeLagMs", () -> newestCommittedSentAt[shard] == 0 ? 0L : System.currentTimeMillis() - newestCommittedSentAt[shard]);
            }
            scheduleFlush();
        }

        private void scheduleFlush() {
            time.registerTimer(time.getCurrentProcessingTime() + config.subscriptions().flushIntervalMs(), t -> {
                flushAll();
                scheduleFlush();
            });
        }

        @Override
        public void write(SubscriptionDelta d, Context context) throws IOException {
            Map<String, SubscriptionDelta> buffer = buffers.get(router.shardOf(d.appId));
            SubscriptionDelta existing = buffer.get(d.key());
            if (existing == null) {
                buffer.put(d.key(), d);
                buffered++;
            } else {
                existing.merge(d);
            }
            if (buffered >= config.subscriptions().flushMaxRows()) {
                flushAll();
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            flushAll();
        }

        private void flushAll() throws IOException {
            for (int shard = 0; shard < buffers.size(); shard++) {
                Map<String, SubscriptionDelta> buffer = buffers.get(shard);
                if (!buffer.isEmpty()) {
                    writeWithRetry(shard, new ArrayList<>(buffer.values()));
                    buffer.clear();
                }
            }
            buffered = 0;
        }

        private void writeWithRetry(int shard, List<SubscriptionDelta> rows) throws IOException {
            long backoff = 1000;
            for (int attempt = 1; ; attempt++) {
                try {
                    long t0 = System.nanoTime();
                    write(shard, rows);
                    lastBatchMillis[shard] = (System.nanoTime() - t0) / 1_000_000;
                    rowsWritten[shard].inc(rows.size());
                    batches[shard].inc();
                    return;
                } catch (SQLException e) {
                    closeQuietly(shard);
                    LOG.warn("shard {} rejected a batch of {} rows (attempt {}), retrying in {} ms: {}", shard, rows.size(), attempt, backoff, e.getMessage());
                    try {
                        Thread.sleep(backoff);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted while shard " + shard + " was unavailable", ie);
                    }
                    backoff = Math.min(backoff * 2, 30_000);
                }
            }
        }

        private void write(int shard, List<SubscriptionDelta> rows) throws SQLException {
            Connection c = connection(shard);
            int n = rows.size();
            String[] apps = new String[n];
            String[] subs = new String[n];
            String[] sets = new String[n];
            String[] unsets = new String[n];
            Long[] sent = new Long[n];
            Long[] versions = new Long[n];
            Map<Integer, long[]> progress = new HashMap<>();
            long newest = 0;
            for (int i = 0; i < n; i++) {
                SubscriptionDelta d = rows.get(i);
                apps[i] = d.appId;
                subs[i] = d.subscriptionId;
                sets[i] = Json.object(d.set);
                unsets[i] = Json.array(d.unset);
                sent[i] = d.newestSentAt;
                versions[i] = d.version;
                long[] p = progress.computeIfAbsent(d.partition, k -> new long[2]);
                p[0] += d.updates;
                p[1] = Math.max(p[1], d.newestSentAt);
                newest = Math.max(newest, d.newestSentAt);
            }
            try (PreparedStatement upsert = c.prepareStatement(UPSERT); PreparedStatement prog = c.prepareStatement(PROGRESS)) {
                upsert.setArray(1, c.createArrayOf("text", apps));
                upsert.setArray(2, c.createArrayOf("text", subs));
                upsert.setArray(3, c.createArrayOf("text", sets));
                upsert.setArray(4, c.createArrayOf("text", unsets));
                upsert.setArray(5, c.createArrayOf("bigint", sent));
                upsert.setArray(6, c.createArrayOf("bigint", versions));
                upsert.executeUpdate();
                Integer[] parts = progress.keySet().toArray(new Integer[0]);
                Long[] records = new Long[parts.length];
                Long[] newestPerPart = new Long[parts.length];
                for (int i = 0; i < parts.length; i++) {
                    records[i] = progress.get(parts[i])[0];
                    newestPerPart[i] = progress.get(parts[i])[1];
                }
                prog.setString(1, job);
                prog.setArray(2, c.createArrayOf("integer", parts));
                prog.setArray(3, c.createArrayOf("bigint", records));
                prog.setArray(4, c.createArrayOf("bigint", newestPerPart));
                prog.executeUpdate();
                c.commit();
            } catch (SQLException e) {
                try {
                    c.rollback();
                } catch (SQLException ignored) {
                    // the connection is replaced anyway
                }
                throw e;
            }
            newestCommittedSentAt[shard] = Math.max(newestCommittedSentAt[shard], newest);
        }

        private Connection connection(int shard) throws SQLException {
            if (connections[shard] == null) {
                Connection c = config.shards().list().get(shard).connect();
                c.setAutoCommit(false);
                connections[shard] = c;
            }
            return connections[shard];
        }

        private void closeQuietly(int shard) {
            if (connections[shard] != null) {
                try {
                    connections[shard].close();
                } catch (SQLException ignored) {
                    // replacing it
                }
                connections[shard] = null;
            }
        }

        @Override
        public void close() {
            for (int i = 0; i < connections.length; i++) {
                closeQuietly(i);
            }
        }
    }
}
