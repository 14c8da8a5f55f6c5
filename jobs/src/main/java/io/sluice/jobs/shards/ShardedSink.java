package io.sluice.jobs.shards;

import io.sluice.core.config.SluiceConfig;
import io.sluice.routing.ShardRouter;
import io.sluice.jobs.common.CountDeadLetters;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.ThreadSafeSimpleCounter;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Writes rows to the shard of their app (the shared app → bucket → shard rule), for any
 * {@link ShardTable}. In: rows, each key's in order (the sink sits right after a keyed operator).
 *
 * <p>Each writer buffers per shard, merging rows with the same key, and flushes when the buffer
 * reaches {@code flushMaxRows}, every {@code flushIntervalMs}, and on Flink's {@code flush} before
 * each checkpoint barrier, so a completed checkpoint means every row before it is committed. A
 * shard's rows go out in one transaction per connection: the table's batch statement plus this
 * job's {@code sluice_progress} rows. Large batches are split by key hash over up to
 * {@code shards.max-connections} connections per shard, written concurrently; shards are written
 * concurrently too. Writes run beside the task: a flush hands its batch over and returns, and only
 * waits for the batch before it (one batch per connection in flight, so rows stay in order per key);
 * Flink's {@code flush} waits for everything.
 *
 * <p>Failures: an error the row caused (SQLSTATE class 22 data exception, 23 constraint violation,
 * 54 program limit) splits the batch in halves until the one row is found; that row goes to the
 * dead-letter topic (stage {@code shard-write}) and its neighbours are committed. Any other error
 * (shard down, connection killed, deadlock, missing table) retries the batch on a new connection
 * with backoff from 1 s doubling to 30 s; the next flush waits for it meanwhile, which is backpressure, not loss.
 *
 * <p>Metrics per shard ({@code shard=<i>}): rowsWritten, rowsPerSecond, batches, lastBatchRows,
 * lastBatchMillis (write latency), timeLagMs (now − newest committed event time), rejectedRows, retries; and {@code reason.shard-write.deadLetters}.
 */
public final class ShardedSink<T> implements Sink<T> {
    private static final long serialVersionUID = 1L;
    /** Below this many rows a batch is not worth a second connection. */
    static final int MIN_CHUNK_ROWS = 2_000;

    static final String PROGRESS = """
            INSERT INTO sluice_progress (job, source_partition, records, newest_event_at, committed_at)
            SELECT ?, p, r, to_timestamp(n / 1000.0), now() FROM unnest(?::int[], ?::bigint[], ?::bigint[]) AS x(p, r, n) ORDER BY p
            ON CONFLICT (job, source_partition) DO UPDATE
               SET records = sluice_progress.records + EXCLUDED.records,
                   newest_event_at = greatest(sluice_progress.newest_event_at, EXCLUDED.newest_event_at),
                   committed_at = now()
            """;

    private final SluiceConfig config;
    private final String job;
    private final ShardTable<T> table;
    private final long flushIntervalMs;
    private final int flushMaxRows;

    public ShardedSink(SluiceConfig config, String job, ShardTable<T> table, long flushIntervalMs, int flushMaxRows) {
        this.config = config;
        this.job = job;
        this.table = table;
        this.flushIntervalMs = flushIntervalMs;
        this.flushMaxRows = flushMaxRows;
    }

    @Override
    public SinkWriter<T> createWriter(WriterInitContext context) {
        return new Writer<>(this, context.getProcessingTimeService(), context.metricGroup());
    }

    /** Whether the row itself caused {@code e}, so retrying it can never succeed. */
    static boolean rowError(SQLException e) {
        String state = e.getSQLState();
        return state != null && (state.startsWith("22") || state.startsWith("23") || state.startsWith("54"));
    }

    static final class Writer<T> implements SinkWriter<T> {
        private static final Logger LOG = LoggerFactory.getLogger(Writer.class);

        private final ShardedSink<T> sink;
        private final ShardTable<T> table;
        private final ShardRouter router;
        private final List<SluiceConfig.Shard> shards;
        private final int connectionsPerShard;
        private final List<Map<Object, T>> buffers = new ArrayList<>();
        private final Connection[][] connections;
        private final Counter[] rowsWritten;
        private final Counter[] batches;
        private final Counter[] rejectedRows;
        private final Counter[] retries;
        private final AtomicLongArray lastBatchMillis;
        private final AtomicLongArray lastBatchRows;
        private final AtomicLongArray newestCommittedEventAt;
        private final ProcessingTimeService time;
        private ExecutorService pool;
        private final List<Future<Void>> inFlight = new ArrayList<>();
        private KafkaProducer<byte[], byte[]> deadLetterProducer;
        private DeadLetterSerializer deadLetterSerializer;
        private final CountDeadLetters.ByReason deadLettersByReason;
        private int buffered;

        Writer(ShardedSink<T> sink, ProcessingTimeService time, MetricGroup metrics) {
            this.sink = sink;
            this.table = sink.table;
            this.router = sink.config.router();
            this.shards = sink.config.shards().list();
            this.connectionsPerShard = sink.config.shards().maxConnections();
            int n = shards.size();
            this.connections = new Connection[n][connectionsPerShard];
            this.rowsWritten = new Counter[n];
            this.batches = new Counter[n];
            this.rejectedRows = new Counter[n];
            this.retries = new Counter[n];
            this.lastBatchMillis = new AtomicLongArray(n);
            this.lastBatchRows = new AtomicLongArray(n);
            this.newestCommittedEventAt = new AtomicLongArray(n);
            this.time = time;
            for (int i = 0; i < n; i++) {
                buffers.add(new LinkedHashMap<>());
                MetricGroup g = metrics.addGroup("shard", String.valueOf(i));
                rowsWritten[i] = g.counter("rowsWritten", new ThreadSafeSimpleCounter());
                g.meter("rowsPerSecond", new MeterView(rowsWritten[i]));
                batches[i] = g.counter("batches", new ThreadSafeSimpleCounter());
                rejectedRows[i] = g.counter("rejectedRows", new ThreadSafeSimpleCounter());
                retries[i] = g.counter("retries", new ThreadSafeSimpleCounter());
                final int shard = i;
                g.gauge("lastBatchMillis", () -> lastBatchMillis.get(shard));
                g.gauge("lastBatchRows", () -> lastBatchRows.get(shard));
                g.gauge("timeLagMs", () -> {
                    long newest = newestCommittedEventAt.get(shard);
                    return newest == 0 ? 0L : System.currentTimeMillis() - newest;
                });
            }
            this.deadLettersByReason = new CountDeadLetters.ByReason(metrics);
            PeriodicFlush.schedule(time, sink.flushIntervalMs, this::flushAll);
        }

        @Override
        public void write(T row, Context context) throws IOException {
            Map<Object, T> buffer = buffers.get(router.shardOf(table.appId(row)));
            Object key = table.key(row);
            T existing = buffer.get(key);
            if (existing == null) {
                buffer.put(key, row);
                buffered++;
            } else {
                buffer.put(key, table.merge(existing, row));
            }
            if (buffered >= sink.flushMaxRows) {
                flushAll();
            }
        }

        /** Before every checkpoint barrier and at end of input: nothing may stay buffered or in flight. */
        @Override
        public void flush(boolean endOfInput) throws IOException {
            flushAll();
            awaitInFlight();
            if (deadLetterProducer != null) {
                deadLetterProducer.flush();
            }
        }

        /**
         * Hands the buffered rows to the shard writers and returns without waiting for their commits, so
         * the task goes on while Postgres works. The batch before must have committed first: at most one
         * batch per connection is in flight, which keeps every key's rows in order and bounds what is held.
         */
        private void flushAll() throws IOException {
            List<Callable<Void>> writes = new ArrayList<>();
            for (int shard = 0; shard < buffers.size(); shard++) {
                Map<Object, T> buffer = buffers.get(shard);
                if (buffer.isEmpty()) {
                    continue;
                }
                List<List<T>> chunks = chunks(buffer);
                for (int slot = 0; slot < chunks.size(); slot++) {
                    final int s = shard;
                    final int c = slot;
                    final List<T> rows = chunks.get(slot);
                    writes.add(() -> {
                        commit(s, c, rows);
                        return null;
                    });
                }
                buffer.clear();
            }
            buffered = 0;
            awaitInFlight();
            if (writes.isEmpty()) {
                return;
            }
            if (pool == null) {
                pool = Executors.newFixedThreadPool(shards.size() * connectionsPerShard, r -> {
                    Thread t = new Thread(r, "sluice-shard-writer-" + sink.job);
                    t.setDaemon(true);
                    return t;
                });
            }
            for (Callable<Void> w : writes) {
                inFlight.add(pool.submit(w));
            }
        }

        /** The buffer split by key hash into as many chunks as connections allow and the size justifies. */
        private List<List<T>> chunks(Map<Object, T> buffer) {
            int k = Math.max(1, Math.min(connectionsPerShard, buffer.size() / MIN_CHUNK_ROWS));
            List<List<T>> chunks = new ArrayList<>(k);
            for (int i = 0; i < k; i++) {
                chunks.add(new ArrayList<>(buffer.size() / k + 1));
            }
            for (Map.Entry<Object, T> e : buffer.entrySet()) {
                chunks.get(k == 1 ? 0 : Math.floorMod(e.getKey().hashCode(), k)).add(e.getValue());
            }
            return chunks;
        }

        /** Waits for the writes in flight, then throws the first failure (the job restarts from its last checkpoint). */
        private void awaitInFlight() throws IOException {
            IOException first = null;
            for (Future<Void> f : inFlight) {
                try {
                    f.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    inFlight.forEach(x -> x.cancel(true));
                    inFlight.clear();
                    throw new IOException("interrupted while writing to the shards", e);
                } catch (ExecutionException e) {
                    if (first == null) {
                        first = e.getCause() instanceof IOException io ? io : new IOException("a shard write failed", e.getCause());
                    }
                }
            }
            inFlight.clear();
            if (first != null) {
                throw first;
            }
        }

        /** Commits the rows on one connection; retries what the shard could not take, isolates what it rejects. */
        private void commit(int shard, int slot, List<T> rows) throws IOException {
            long backoff = 1000;
            for (int attempt = 1; ; attempt++) {
                try {
                    long t0 = System.nanoTime();
                    writeTransaction(shard, slot, rows);
                    lastBatchMillis.set(shard, (System.nanoTime() - t0) / 1_000_000);
                    lastBatchRows.set(shard, rows.size());
                    rowsWritten[shard].inc(rows.size());
                    batches[shard].inc();
                    return;
                } catch (SQLException e) {
                    if (rowError(e)) {
                        isolate(shard, slot, rows, e);
                        return;
                    }
                    closeQuietly(shard, slot);
                    retries[shard].inc();
                    LOG.warn("shard {} could not take a batch of {} rows (attempt {}), retrying in {} ms: {} (SQLSTATE {})",
                            shard, rows.size(), attempt, backoff, e.getMessage(), e.getSQLState());
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

        private void isolate(int shard, int slot, List<T> rows, SQLException e) throws IOException {
            if (rows.size() > 1) {
                int half = rows.size() / 2;
                commit(shard, slot, rows.subList(0, half));
                commit(shard, slot, rows.subList(half, rows.size()));
                return;
            }
            String reason = "shard " + shard + " rejected the row: " + e.getMessage() + " (SQLSTATE " + e.getSQLState() + ")";
            LOG.warn("{}; sending it to the dead-letter topic", reason);
            deadLetter(table.rejected(rows.get(0), reason));
            rejectedRows[shard].inc();
            deadLettersByReason.inc("shard-write");
        }

        private synchronized void deadLetter(DeadLetter d) throws IOException {
            if (deadLetterProducer == null) {
                deadLetterProducer = new KafkaProducer<>(KafkaClients.clientProperties(sink.config), new ByteArraySerializer(), new ByteArraySerializer());
                deadLetterSerializer = new DeadLetterSerializer(sink.config.kafka().deadLettersTopic());
            }
            try {
                deadLetterProducer.send(deadLetterSerializer.serialize(d, null, System.currentTimeMillis())).get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while writing a dead letter", e);
            } catch (ExecutionException e) {
                throw new IOException("could not write a dead letter for a row shard-write rejected", e.getCause());
            }
        }

        private void writeTransaction(int shard, int slot, List<T> rows) throws SQLException {
            Connection c = connection(shard, slot);
            Map<Integer, long[]> progress = new TreeMap<>();
            long newest = 0;
            for (T row : rows) {
                long[] p = progress.computeIfAbsent(table.sourcePartition(row), k -> new long[2]);
                long at = table.newestEventAt(row);
                p[0] += table.records(row);
                p[1] = Math.max(p[1], at);
                newest = Math.max(newest, at);
            }
            try {
                table.write(c, rows);
                try (PreparedStatement prog = c.prepareStatement(PROGRESS)) {
                    Integer[] parts = progress.keySet().toArray(new Integer[0]);
                    Long[] records = new Long[parts.length];
                    Long[] newestPerPart = new Long[parts.length];
                    for (int i = 0; i < parts.length; i++) {
                        records[i] = progress.get(parts[i])[0];
                        newestPerPart[i] = progress.get(parts[i])[1];
                    }
                    prog.setString(1, sink.job);
                    prog.setArray(2, c.createArrayOf("integer", parts));
                    prog.setArray(3, c.createArrayOf("bigint", records));
                    prog.setArray(4, c.createArrayOf("bigint", newestPerPart));
                    prog.executeUpdate();
                }
                c.commit();
            } catch (SQLException e) {
                try {
                    c.rollback();
                } catch (SQLException ignored) {
                    // the connection is replaced if it is broken
                }
                throw e;
            }
            newestCommittedEventAt.accumulateAndGet(shard, newest, Math::max);
        }

        private Connection connection(int shard, int slot) throws SQLException {
            if (connections[shard][slot] == null) {
                Connection c = shards.get(shard).connect();
                c.setAutoCommit(false);
                connections[shard][slot] = c;
            }
            return connections[shard][slot];
        }

        private void closeQuietly(int shard, int slot) {
            if (connections[shard][slot] != null) {
                try {
                    connections[shard][slot].close();
                } catch (SQLException ignored) {
                    // replacing it
                }
                connections[shard][slot] = null;
            }
        }

        @Override
        public void close() {
            if (pool != null) {
                pool.shutdownNow();
            }
            for (int i = 0; i < connections.length; i++) {
                for (int j = 0; j < connectionsPerShard; j++) {
                    closeQuietly(i, j);
                }
            }
            if (deadLetterProducer != null) {
                deadLetterProducer.close();
            }
        }
    }
}
