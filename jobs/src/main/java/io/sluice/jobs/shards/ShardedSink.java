package io.sluice.jobs.shards;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.db.ShardRouting;
import io.sluice.routing.ShardRouter;
import io.sluice.jobs.common.CountDeadLetters;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.common.Fatal;
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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Writes rows to the shard of their app (the shared app → bucket → shard rule), for any
 * {@link ShardTable}. In: rows, each key's in order (the sink sits right after a keyed operator).
 *
 * <p>Each writer buffers per shard, merging rows with the same key ({@link ShardTable#mergeable}; a row
 * that may not be merged goes into a later round of the same batch), and flushes when the buffer
 * reaches {@code flushMaxRows}, every {@code flushIntervalMs}, and on Flink's {@code flush} before
 * each checkpoint barrier, so a completed checkpoint means every row before it is committed. A
 * shard's rows go out in one transaction per connection: the table's guarded statement (once per round)
 * plus this writer's {@code sluice_progress} rows. Large batches are split by key hash over up to
 * {@code shards.max-connections} connections per shard, written concurrently; shards are written
 * concurrently too. Writes run beside the task: a flush hands its batch over and returns, and only
 * waits for the batch before it (one batch per connection in flight, so rows stay in order per key);
 * Flink's {@code flush} waits for everything.
 *
 * <p>Progress: per (job, topic, source epoch, partition) and writer (subtask and connection slot, so concurrent writers
 * never lock the same row), the highest source offset committed and the newest event time, both kept with
 * {@code greatest()}: a replay after a restore changes neither.
 *
 * <p>Failures: an error the row caused (SQLSTATE class 22 data exception, 23 constraint violation,
 * 54 program limit) splits the batch in halves until the one row is found; that row goes to the
 * dead-letter topic (stage {@code shard-write}) and its neighbours are committed. An error no retry can
 * fix (class 28 authentication, 3D no database, 42 no table or privilege) stops the job without a
 * restart, naming the shard and the fix. Any other error (shard down, connection killed, lock timeout,
 * deadlock) retries the batch on a new connection with backoff from 1 s doubling to 30 s; the next flush
 * waits for it meanwhile, which is backpressure, not loss. Rows the version guard refuses (see the table)
 * go to the dead-letter topic after their batch commits.
 *
 * <p>When it starts (or, for a shard not reachable then, before its first write there), each writer checks that
 * every shard was written with this job's routing ({@link ShardRouting}; the first writer records it) and stops
 * the job, naming {@code ./sluice reshard}, if not.
 *
 * <p>{@code close()} stops retries, waits up to 30 s (or {@code shards.socket-timeout} if shorter) for writes
 * in flight, and never opens a connection afterwards.
 *
 * <p>Metrics per shard ({@code shard=<i>}): rowsWritten, rowsPerSecond, batches, lastBatchRows,
 * lastBatchMillis (write latency), pendingRows (buffered or in flight, not committed yet),
 * secondsSinceLastCommit (0 while nothing is pending), timeLagMs (now − newest committed event time), rejectedRows,
 * refusedRows (by the version guard), noOpWrites (writes the version guard turned into no-ops: replays,
 * or silent skips if they grow without a restore), retries; and {@code reason.<stage>.deadLetters}.
 */
public final class ShardedSink<T> implements Sink<T> {
    private static final long serialVersionUID = 1L;
    /** Below this many rows a batch is not worth a second connection. */
    static final int MIN_CHUNK_ROWS = 2_000;

    static final String PROGRESS = """
            INSERT INTO sluice_progress (job, topic, source_epoch, source_partition, writer, committed_offset, newest_event_at, committed_at)
            SELECT ?, ?, e, p, ?, o, to_timestamp(n / 1000.0), now() FROM unnest(?::int[], ?::int[], ?::bigint[], ?::bigint[]) AS x(e, p, o, n)
            ON CONFLICT (job, topic, source_epoch, source_partition, writer) DO UPDATE
               SET committed_offset = greatest(sluice_progress.committed_offset, EXCLUDED.committed_offset),
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
        return new Writer<>(this, context.getProcessingTimeService(), context.metricGroup(), context.getTaskInfo().getIndexOfThisSubtask());
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
        private final int subtask;
        /** Per shard, the rounds of the next batch: round 0 holds every key, a later round only rows that could not be merged into an earlier one. */
        private final List<List<Map<Object, T>>> buffers = new ArrayList<>();
        private final Connection[][] connections;
        private final Counter[] rowsWritten;
        private final Counter[] batches;
        private final Counter[] rejectedRows;
        private final Counter[] refusedRows;
        private final Counter[] noOpWrites;
        private final Counter[] retries;
        private final AtomicLongArray lastBatchMillis;
        private final AtomicLongArray lastBatchRows;
        private final AtomicLongArray newestCommittedEventAt;
        /** Per shard, rows buffered or in flight, not yet committed (a key merged into a buffered row counts once). */
        private final AtomicLongArray pendingRows;
        /** Per shard, when its last batch committed (or the writer started), epoch ms. */
        private final AtomicLongArray lastCommitAt;
        private ExecutorService pool;
        private final List<Future<Void>> inFlight = new ArrayList<>();
        private KafkaProducer<byte[], byte[]> deadLetterProducer;
        private DeadLetterSerializer deadLetterSerializer;
        private final CountDeadLetters.ByReason deadLettersByReason;
        private int buffered;
        private volatile boolean closed;
        /** 1 for shards whose recorded routing was checked against this job's (set by the writer threads). */
        private final AtomicIntegerArray routingChecked;

        Writer(ShardedSink<T> sink, ProcessingTimeService time, MetricGroup metrics, int subtask) {
            this.sink = sink;
            this.table = sink.table;
            this.router = sink.config.router();
            this.shards = sink.config.shards().list();
            this.connectionsPerShard = sink.config.shards().maxConnections();
            this.subtask = subtask;
            int n = shards.size();
            this.connections = new Connection[n][connectionsPerShard];
            this.rowsWritten = new Counter[n];
            this.batches = new Counter[n];
            this.rejectedRows = new Counter[n];
            this.refusedRows = new Counter[n];
            this.noOpWrites = new Counter[n];
            this.retries = new Counter[n];
            this.lastBatchMillis = new AtomicLongArray(n);
            this.lastBatchRows = new AtomicLongArray(n);
            this.newestCommittedEventAt = new AtomicLongArray(n);
            this.pendingRows = new AtomicLongArray(n);
            this.lastCommitAt = new AtomicLongArray(n);
            this.routingChecked = new AtomicIntegerArray(n);
            for (int i = 0; i < n; i++) {
                buffers.add(new ArrayList<>(List.of(new LinkedHashMap<>())));
                MetricGroup g = metrics.addGroup("shard", String.valueOf(i));
                rowsWritten[i] = g.counter("rowsWritten", new ThreadSafeSimpleCounter());
                g.meter("rowsPerSecond", new MeterView(rowsWritten[i]));
                batches[i] = g.counter("batches", new ThreadSafeSimpleCounter());
                rejectedRows[i] = g.counter("rejectedRows", new ThreadSafeSimpleCounter());
                refusedRows[i] = g.counter("refusedRows", new ThreadSafeSimpleCounter());
                noOpWrites[i] = g.counter("noOpWrites", new ThreadSafeSimpleCounter());
                retries[i] = g.counter("retries", new ThreadSafeSimpleCounter());
                final int shard = i;
                g.gauge("lastBatchMillis", () -> lastBatchMillis.get(shard));
                g.gauge("lastBatchRows", () -> lastBatchRows.get(shard));
                lastCommitAt.set(shard, System.currentTimeMillis());
                g.gauge("pendingRows", () -> pendingRows.get(shard));
                g.gauge("secondsSinceLastCommit", () -> pendingRows.get(shard) == 0 ? 0L : (System.currentTimeMillis() - lastCommitAt.get(shard)) / 1000);
                g.gauge("timeLagMs", () -> {
                    long newest = newestCommittedEventAt.get(shard);
                    return newest == 0 ? 0L : System.currentTimeMillis() - newest;
                });
            }
            this.deadLettersByReason = new CountDeadLetters.ByReason(metrics);
            checkRoutingAtStart();
            PeriodicFlush.schedule(time, sink.flushIntervalMs, this::flushAll);
        }

        /**
         * Refuses, at start rather than at the first row, a routing the shards were not written with: first every
         * shard that answers is checked, and only if all agree is the routing recorded where none is yet (so a
         * refusal never leaves a half-recorded routing behind). A shard that does not answer is checked at its first write.
         */
        private void checkRoutingAtStart() {
            List<Integer> reachable = new ArrayList<>();
            try {
                for (int i = 0; i < shards.size(); i++) {
                    try {
                        Connection c = shards.get(i).connect(applicationName());
                        connections[i][0] = c;
                        Fatal.stopIf(ShardRouting.check(c, i, router));
                        reachable.add(i);
                    } catch (SQLException e) {
                        Fatal.rethrowIfTerminal(i, e);
                        LOG.warn("shard {} is not reachable yet ({}); its routing is checked at its first write", i, e.getMessage());
                        closeQuietly(i, 0);
                    }
                }
                for (int i : reachable) {
                    try {
                        Fatal.stopIf(ShardRouting.recordFirst(connections[i][0], i, router));
                        connections[i][0].setAutoCommit(false);
                        routingChecked.set(i, 1);
                    } catch (SQLException e) {
                        Fatal.rethrowIfTerminal(i, e);
                        LOG.warn("shard {} did not answer the routing check ({}); it is checked at its first write", i, e.getMessage());
                        closeQuietly(i, 0);
                    }
                }
            } catch (RuntimeException e) {
                for (int i = 0; i < shards.size(); i++) {
                    closeQuietly(i, 0);
                }
                throw e;
            }
        }

        private String applicationName() {
            return "sluice-sink-" + sink.job;
        }

        @Override
        public void write(T row, Context context) throws IOException {
            int shard = router.shardOf(table.appId(row));
            List<Map<Object, T>> rounds = buffers.get(shard);
            Object key = table.key(row);
            int last = rounds.size() - 1; // the last round holding the key: merging into an earlier one would jump a row in between
            while (last >= 0 && !rounds.get(last).containsKey(key)) {
                last--;
            }
            if (last >= 0 && table.mergeable(rounds.get(last).get(key), row)) {
                rounds.get(last).put(key, table.merge(rounds.get(last).get(key), row));
            } else {
                if (last + 1 == rounds.size()) {
                    rounds.add(new LinkedHashMap<>());
                }
                rounds.get(last + 1).put(key, row);
                buffered++;
                pendingRows.incrementAndGet(shard);
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
                List<Map<Object, T>> rounds = buffers.get(shard);
                if (rounds.get(0).isEmpty()) {
                    continue;
                }
                List<List<List<T>>> chunks = chunks(rounds);
                for (int slot = 0; slot < chunks.size(); slot++) {
                    final int s = shard;
                    final int c = slot;
                    final List<List<T>> rows = chunks.get(slot);
                    writes.add(() -> {
                        commit(s, c, rows);
                        return null;
                    });
                }
                rounds.clear();
                rounds.add(new LinkedHashMap<>());
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

        /**
         * The rounds split by key hash into as many chunks as connections allow and round 0's size justifies;
         * a key's rows of every round land in the same chunk, in round order.
         */
        private List<List<List<T>>> chunks(List<Map<Object, T>> rounds) {
            int k = Math.max(1, Math.min(connectionsPerShard, rounds.get(0).size() / MIN_CHUNK_ROWS));
            List<List<List<T>>> chunks = new ArrayList<>(k);
            for (int i = 0; i < k; i++) {
                List<List<T>> chunk = new ArrayList<>(rounds.size());
                for (Map<Object, T> round : rounds) {
                    chunk.add(new ArrayList<>(round.size() / k + 1));
                }
                chunks.add(chunk);
            }
            for (int r = 0; r < rounds.size(); r++) {
                for (Map.Entry<Object, T> e : rounds.get(r).entrySet()) {
                    chunks.get(k == 1 ? 0 : Math.floorMod(e.getKey().hashCode(), k)).get(r).add(e.getValue());
                }
            }
            return chunks;
        }

        /** Waits for the writes in flight, then throws the first failure (the job restarts from its last checkpoint, or stops if it is fatal). */
        private void awaitInFlight() throws IOException {
            Throwable first = null;
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
                        first = e.getCause();
                    }
                }
            }
            inFlight.clear();
            if (first instanceof RuntimeException r) {
                throw r;
            }
            if (first != null) {
                throw first instanceof IOException io ? io : new IOException("a shard write failed", first);
            }
        }

        /** Commits the rows on one connection; retries what the shard could not take, isolates what it rejects. */
        private void commit(int shard, int slot, List<List<T>> rounds) throws IOException {
            long backoff = 1000;
            int size = rounds.stream().mapToInt(List::size).sum();
            for (int attempt = 1; ; attempt++) {
                try {
                    long t0 = System.nanoTime();
                    List<DeadLetter> refused = writeTransaction(shard, slot, rounds);
                    lastBatchMillis.set(shard, (System.nanoTime() - t0) / 1_000_000);
                    lastBatchRows.set(shard, size);
                    pendingRows.addAndGet(shard, -size);
                    lastCommitAt.set(shard, System.currentTimeMillis());
                    rowsWritten[shard].inc(size);
                    batches[shard].inc();
                    for (DeadLetter d : refused) {
                        LOG.warn("shard {} refused an update: {}", shard, d.reason());
                        deadLetter(d);
                        refusedRows[shard].inc();
                        deadLettersByReason.inc(d.stage());
                    }
                    return;
                } catch (SQLException e) {
                    Fatal.rethrowIfTerminal(shard, e);
                    if (rowError(e)) {
                        if (rounds.size() > 1) { // isolate within each round, in order
                            for (List<T> round : rounds) {
                                commit(shard, slot, List.of(round));
                            }
                        } else {
                            isolate(shard, slot, rounds.get(0), e);
                        }
                        return;
                    }
                    closeQuietly(shard, slot);
                    if (closed) {
                        throw new IOException("the sink closed while shard " + shard + " could not take a batch of " + size + " rows", e);
                    }
                    retries[shard].inc();
                    LOG.warn("shard {} could not take a batch of {} rows (attempt {}), retrying in {} ms: {} (SQLSTATE {})",
                            shard, size, attempt, backoff, e.getMessage(), e.getSQLState());
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
                commit(shard, slot, List.of(rows.subList(0, half)));
                commit(shard, slot, List.of(rows.subList(half, rows.size())));
                return;
            }
            String reason = "shard " + shard + " rejected the row: " + e.getMessage() + " (SQLSTATE " + e.getSQLState() + ")";
            LOG.warn("{}; sending it to the dead-letter topic", reason);
            deadLetter(table.rejected(rows.get(0), reason));
            pendingRows.decrementAndGet(shard);
            rejectedRows[shard].inc();
            deadLettersByReason.inc("shard-write");
        }

        private synchronized void deadLetter(DeadLetter d) throws IOException {
            if (deadLetterProducer == null) {
                deadLetterProducer = new KafkaProducer<>(KafkaClients.clientProperties(sink.config), new ByteArraySerializer(), new ByteArraySerializer());
                deadLetterSerializer = new DeadLetterSerializer(sink.config.kafka().deadLettersTopic(), KafkaClients.clientProperties(sink.config));
                deadLetterSerializer.open(null, null); // learns the topic's max.message.bytes
            }
            try {
                deadLetterProducer.send(deadLetterSerializer.serialize(d, null, null)).get(); // a merged row has no one input timestamp
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while writing a dead letter", e);
            } catch (ExecutionException e) {
                throw new IOException("could not write a dead letter for a row the shard did not take", e.getCause());
            }
        }

        /** One transaction: each round's guarded statement (and what it asks to write again), then the progress rows. Returns the refused rows' dead letters. */
        private List<DeadLetter> writeTransaction(int shard, int slot, List<List<T>> rounds) throws SQLException {
            Connection c = connection(shard, slot);
            Map<Long, long[]> progress = new TreeMap<>(); // by (epoch << 32 | partition)
            long newest = 0;
            for (List<T> rows : rounds) {
                for (T row : rows) {
                    long source = (long) table.sourceEpoch(row) << 32 | Integer.toUnsignedLong(table.sourcePartition(row));
                    long[] p = progress.computeIfAbsent(source, k -> new long[] {-1, 0});
                    long at = table.newestEventAt(row);
                    p[0] = Math.max(p[0], table.sourceOffset(row));
                    p[1] = Math.max(p[1], at);
                    newest = Math.max(newest, at);
                }
            }
            List<DeadLetter> refused = new ArrayList<>();
            int noOps = 0;
            try {
                for (List<T> rows : rounds) {
                    for (int pass = 0; !rows.isEmpty(); pass++) {
                        if (pass == 3) {
                            throw new SQLException("rows kept conflicting with concurrent inserts after 3 passes", "40001");
                        }
                        ShardTable.Written<T> w = table.write(c, rows);
                        noOps += w.noOps();
                        refused.addAll(w.refused());
                        rows = w.again();
                    }
                }
                try (PreparedStatement prog = c.prepareStatement(PROGRESS)) {
                    int n = progress.size();
                    Integer[] epochs = new Integer[n];
                    Integer[] parts = new Integer[n];
                    Long[] offsets = new Long[n];
                    Long[] newestPerPart = new Long[n];
                    int i = 0;
                    for (Map.Entry<Long, long[]> e : progress.entrySet()) {
                        epochs[i] = (int) (e.getKey() >>> 32);
                        parts[i] = (int) (long) e.getKey();
                        offsets[i] = e.getValue()[0];
                        newestPerPart[i] = e.getValue()[1];
                        i++;
                    }
                    prog.setString(1, sink.job);
                    prog.setString(2, table.sourceTopic());
                    prog.setInt(3, subtask * connectionsPerShard + slot);
                    prog.setArray(4, c.createArrayOf("integer", epochs));
                    prog.setArray(5, c.createArrayOf("integer", parts));
                    prog.setArray(6, c.createArrayOf("bigint", offsets));
                    prog.setArray(7, c.createArrayOf("bigint", newestPerPart));
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
            noOpWrites[shard].inc(noOps);
            newestCommittedEventAt.accumulateAndGet(shard, newest, Math::max);
            return refused;
        }

        private Connection connection(int shard, int slot) throws SQLException {
            if (closed) {
                throw new SQLException("the shard writer is closed", "08003");
            }
            if (connections[shard][slot] == null) {
                Connection c = shards.get(shard).connect(applicationName());
                try {
                    if (routingChecked.get(shard) == 0) { // a shard that did not answer at start
                        Fatal.stopIf(ShardRouting.recordFirst(c, shard, router));
                        routingChecked.set(shard, 1);
                    }
                    c.setAutoCommit(false);
                } catch (SQLException | RuntimeException e) {
                    c.close();
                    throw e;
                }
                synchronized (connections) {
                    if (closed) { // close() ran while this connected: it must not outlive the writer
                        c.close();
                        throw new SQLException("the shard writer is closed", "08003");
                    }
                    connections[shard][slot] = c;
                }
                return c;
            }
            return connections[shard][slot];
        }

        private void closeQuietly(int shard, int slot) {
            Connection c = connections[shard][slot];
            if (c != null) {
                connections[shard][slot] = null;
                try {
                    c.close();
                } catch (SQLException ignored) {
                    // replacing it
                }
            }
        }

        /**
         * Stops retries and waits, at most 30 s (or {@code shards.socket-timeout}), for the writes in flight, so a
         * cancelled attempt does not keep writing beside its successor; then closes every connection. A
         * write still running after that has its connection aborted (its transaction rolls back).
         */
        @Override
        public void close() throws Exception {
            synchronized (connections) {
                closed = true;
            }
            try {
                if (pool != null) {
                    pool.shutdownNow(); // interrupts retry back-offs; a statement in progress runs to its end
                    long waitMs = Math.min(30_000, shards.get(0).timeouts().socketMs()); // well inside Flink's task cancellation timeout
                    if (!pool.awaitTermination(waitMs, TimeUnit.MILLISECONDS)) {
                        LOG.warn("shard writes of job {} still running {} ms after close; aborting their connections", sink.job, waitMs);
                        for (Connection[] perShard : connections) {
                            for (Connection c : perShard) {
                                if (c != null) {
                                    try {
                                        c.abort(Runnable::run);
                                    } catch (SQLException | RuntimeException e) {
                                        LOG.warn("could not abort a shard connection: {}", e.getMessage());
                                    }
                                }
                            }
                        }
                    }
                }
            } finally {
                for (int i = 0; i < connections.length; i++) {
                    for (int j = 0; j < connectionsPerShard; j++) {
                        closeQuietly(i, j);
                    }
                }
                if (deadLetterProducer != null) {
                    deadLetterProducer.close(java.time.Duration.ofSeconds(10));
                }
            }
        }
    }
}
