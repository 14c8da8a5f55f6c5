package io.sluice.jobs.shards;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.db.ShardRouting;
import io.sluice.routing.ShardRouter;
import io.sluice.jobs.common.ClassLoaderRelease;
import io.sluice.jobs.common.CountDeadLetters;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.common.Fatal;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.SupportsWriterState;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
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
import java.util.Collection;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Writes rows to the shard of their app (the shared app → bucket → shard rule), for any
 * {@link ShardTable}. In: rows, each key's in order and always to the same writer (the sink follows a keyed operator, or
 * the source subtask that reads the key's partition; the {@code assignment} names which).
 *
 * <p>Each writer buffers per shard, merging rows with the same key ({@link ShardTable#mergeable}; a row
 * that may not be merged goes into a later round of the same batch). A shard's buffer goes out as one
 * batch when it reaches {@code flushMaxRows}, every {@code flushIntervalMs}, and on Flink's {@code flush}
 * before each checkpoint barrier, unless that shard's batch before is still in flight: at most one batch
 * per shard, so every key's rows reach it in order. A batch commits in one transaction per connection:
 * the table's guarded statement (once per round) plus this writer's {@code sluice_progress} rows. Large
 * batches are split by key hash over up to {@code shards.max-connections} connections, written
 * concurrently; shards are written concurrently and independently, beside the task.
 *
 * <p>Shard isolation: the flush before a barrier waits only for shards that answer (a batch that has not
 * failed a try, up to {@link #HEALTHY_BATCH_MS} from when it went out). The rows no shard has committed
 * by then (the batches in flight and the buffers) are the writer's checkpointed state ({@link Pending}),
 * so a completed checkpoint means every row before it is committed or in the checkpoint. A table whose
 * rows are deltas ({@link ShardTable#orderSensitive}) refuses to restore such rows at another
 * parallelism or assignment: Flink would hand them to writers other than their keys'. After a restore they are written again before any newer row; the guarded statements make
 * that a no-op where they were committed, and never let a row go back. So a shard that is down or hangs
 * holds back only its own rows: the other shards, the checkpoints and the push queue go on. Its rows wait
 * coalesced per key, so they grow with distinct keys, not updates; past {@code shards.max-pending-rows}
 * for one shard, {@code write} waits for it (backpressure). At end of input the writer waits until every
 * row is committed.
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
 * deadlock, an unknown outcome of COMMIT) retries the batch on a new connection with backoff from 1 s
 * doubling to 30 s; its rows stay pending, and in every checkpoint, until a commit succeeds. Rows the version guard refuses (see the table)
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
 * secondsSinceLastCommit (since the later of its last commit and the moment rows began to wait; 0 while none do), timeLagMs (now − newest committed event time), rejectedRows,
 * refusedRows (by the version guard), noOpWrites (writes the version guard turned into no-ops: replays,
 * or silent skips if they grow without a restore), retries; and {@code reason.<stage>.deadLetters}.
 */
public final class ShardedSink<T> implements Sink<T>, SupportsWriterState<T, ShardedSink.Pending<T>> {
    private static final long serialVersionUID = 1L;
    /** How long the flush before a barrier waits for a shard's batch that has not failed, from when it went out. */
    static final long HEALTHY_BATCH_MS = 1_000;
    /** Below this many rows a batch is not worth a second connection. */
    static final int MIN_CHUNK_ROWS = 2_000;
    /**
     * The most rows one statement carries. A batch grows past {@code flushMaxRows} while the one before is in flight;
     * written as one statement, Postgres plans its join against the table for an array of unknown size, and a
     * batch of tens of thousands of rows cost three times the CPU per row (docs/benchmarks.md).
     */
    static final int MAX_STATEMENT_ROWS = 2_000;

    static final String PROGRESS = """
            INSERT INTO sluice_progress (job, topic, source_epoch, source_partition, writer, committed_offset, newest_event_at, committed_at)
            SELECT ?, ?, e, p, ?, o, to_timestamp(n / 1000.0), clock_timestamp() FROM unnest(?::int[], ?::int[], ?::bigint[], ?::bigint[]) AS x(e, p, o, n)
            ON CONFLICT (job, topic, source_epoch, source_partition, writer) DO UPDATE
               SET committed_offset = greatest(sluice_progress.committed_offset, EXCLUDED.committed_offset),
                   newest_event_at = greatest(sluice_progress.newest_event_at, EXCLUDED.newest_event_at),
                   committed_at = EXCLUDED.committed_at
            """;

    private final SluiceConfig config;
    private final String job;
    private final ShardTable<T> table;
    private final long flushIntervalMs;
    private final int flushMaxRows;
    private final String assignment;

    /** A sink whose rows reach the writers by key ({@link #BY_KEY}): the sink follows a keyed operator. */
    public ShardedSink(SluiceConfig config, String job, ShardTable<T> table, long flushIntervalMs, int flushMaxRows) {
        this(config, job, table, flushIntervalMs, flushMaxRows, BY_KEY);
    }

    /**
     * {@code assignment} names how rows reach the writers (which writer gets a key's rows), e.g. {@link #BY_KEY} or
     * {@link #bySourcePartition}; it is kept with the rows in checkpoints, and rows restored under another one are
     * checked like rows restored at another parallelism.
     */
    public ShardedSink(SluiceConfig config, String job, ShardTable<T> table, long flushIntervalMs, int flushMaxRows, String assignment) {
        this.config = config;
        this.job = job;
        this.table = table;
        this.flushIntervalMs = flushIntervalMs;
        this.flushMaxRows = flushMaxRows;
        this.assignment = assignment;
    }

    /** Rows reach the writers by key group (the sink follows a {@code keyBy}): the assignment of every build before format 2. */
    public static final String BY_KEY = "by key";

    /**
     * Rows reach the writer of the source subtask that read them: a key's writer follows its partition, so it changes
     * when the partitions do, which a new source epoch marks.
     */
    public static String bySourcePartition(int sourceEpoch) {
        return "by source partition, epoch " + sourceEpoch;
    }

    @Override
    public StatefulSinkWriter<T, Pending<T>> createWriter(WriterInitContext context) {
        return restoreWriter(context, List.of());
    }

    @Override
    public StatefulSinkWriter<T, Pending<T>> restoreWriter(WriterInitContext context, Collection<Pending<T>> recovered) {
        ClassLoaderRelease.deregisterDriversOnRelease(context.getUserCodeClassLoader()::registerReleaseHookIfAbsent);
        return new Writer<>(this, context.getProcessingTimeService(), context.getMailboxExecutor(), context.metricGroup(),
                context.getTaskInfo().getIndexOfThisSubtask(), context.getTaskInfo().getNumberOfParallelSubtasks(), recovered);
    }

    @Override
    public SimpleVersionedSerializer<Pending<T>> getWriterStateSerializer() {
        return new PendingSerializer<>(table);
    }

    /**
     * The rows a writer held at a checkpoint that no shard had committed yet, in the order they must be written, the
     * parallelism of the writers that held them (their rows are spread over the new writers by Flink on a rescale,
     * regardless of keys), and how rows reached those writers ({@link #BY_KEY} or {@link #bySourcePartition}).
     */
    public record Pending<T>(int parallelism, String assignment, List<T> rows) {
        /** Rows held by writers that received them by key ({@link #BY_KEY}). */
        public Pending(int parallelism, List<T> rows) {
            this(parallelism, BY_KEY, rows);
        }
    }

    /**
     * The writer state's format: version 2 is the writers' parallelism, their assignment (UTF), a row count, then each
     * row as the table writes it ({@link ShardTable#writeRow}). Version 1 has no assignment: its builds always had the
     * sink behind a keyed operator, so it reads as {@link #BY_KEY}. A build that cannot read a version refuses the
     * restore, naming it.
     */
    static final class PendingSerializer<T> implements SimpleVersionedSerializer<Pending<T>> {
        static final int VERSION = 2;
        private final ShardTable<T> table;

        PendingSerializer(ShardTable<T> table) {
            this.table = table;
        }

        @Override
        public int getVersion() {
            return VERSION;
        }

        @Override
        public byte[] serialize(Pending<T> pending) throws IOException {
            DataOutputSerializer out = new DataOutputSerializer((int) Math.min(1 << 20, 64 + 64L * pending.rows().size()));
            out.writeInt(pending.parallelism());
            out.writeUTF(pending.assignment());
            out.writeInt(pending.rows().size());
            for (T row : pending.rows()) {
                table.writeRow(out, row);
            }
            return out.getCopyOfBuffer();
        }

        @Override
        public Pending<T> deserialize(int version, byte[] bytes) throws IOException {
            if (version != 1 && version != VERSION) {
                throw new IOException("the shard sink's pending rows were written in format " + version + ", and this build reads formats 1 and "
                        + VERSION + " only: restore with the build that took the checkpoint");
            }
            DataInputDeserializer in = new DataInputDeserializer(bytes);
            int parallelism = in.readInt();
            String assignment = version == 1 ? BY_KEY : in.readUTF();
            int n = in.readInt();
            List<T> rows = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                rows.add(table.readRow(in));
            }
            return new Pending<>(parallelism, assignment, rows);
        }
    }

    /** Whether the row itself caused {@code e}, so retrying it can never succeed. */
    static boolean rowError(SQLException e) {
        String state = e.getSQLState();
        return state != null && (state.startsWith("22") || state.startsWith("23") || state.startsWith("54"));
    }

    static final class Writer<T> implements StatefulSinkWriter<T, Pending<T>> {
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
        /** Per shard, when its pending rows last went from none to some, epoch ms. */
        private final AtomicLongArray pendingSince;
        private ExecutorService pool;
        private final MailboxExecutor mailbox;
        /** Per shard, rows buffered since its last batch went out (new keys and unmergeable rows). */
        private final int[] bufferedRows;
        /** Per shard, the batch being written (null if none): at most one, so a key's rows reach the shard in order. */
        private final CompletableFuture<?>[] inFlight;
        /** Per shard, the rows of the batch being written, per chunk and round: part of a checkpoint until it commits. */
        private final List<List<List<T>>>[] inFlightRows;
        private final int maxPendingRows;
        private final int parallelism;
        /** Per shard, when its batch in flight went out (epoch ms), and whether a try of it has failed (1) since. */
        private final AtomicLongArray batchStartedAt;
        private final AtomicIntegerArray batchFailing;
        private KafkaProducer<byte[], byte[]> deadLetterProducer;
        private DeadLetterSerializer deadLetterSerializer;
        private final CountDeadLetters.ByReason deadLettersByReason;
        private volatile boolean closed;
        /** 1 for shards whose recorded routing was checked against this job's (set by the writer threads). */
        private final AtomicIntegerArray routingChecked;

        @SuppressWarnings("unchecked")
        Writer(ShardedSink<T> sink, ProcessingTimeService time, MailboxExecutor mailbox, MetricGroup metrics, int subtask, int parallelism,
               Collection<Pending<T>> recovered) {
            this.sink = sink;
            this.parallelism = parallelism;
            this.mailbox = mailbox;
            this.maxPendingRows = sink.config.shards().maxPendingRows();
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
            this.pendingSince = new AtomicLongArray(n);
            this.routingChecked = new AtomicIntegerArray(n);
            this.bufferedRows = new int[n];
            this.batchStartedAt = new AtomicLongArray(n);
            this.batchFailing = new AtomicIntegerArray(n);
            this.inFlight = new CompletableFuture<?>[n];
            this.inFlightRows = new List[n];
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
                g.gauge("secondsSinceLastCommit", () -> pendingRows.get(shard) == 0 ? 0L
                        : (System.currentTimeMillis() - Math.max(lastCommitAt.get(shard), pendingSince.get(shard))) / 1000);
                g.gauge("timeLagMs", () -> {
                    long newest = newestCommittedEventAt.get(shard);
                    return newest == 0 ? 0L : System.currentTimeMillis() - newest;
                });
            }
            this.deadLettersByReason = new CountDeadLetters.ByReason(metrics);
            List<Pending<T>> kept = new ArrayList<>();
            for (Pending<T> p : recovered) {
                boolean otherWriters = p.parallelism() != parallelism || !p.assignment().equals(sink.assignment);
                kept.add(table.orderSensitive() && !p.rows().isEmpty() && otherWriters ? uncommittedOnly(p) : p);
            }
            recovered = kept;
            checkRoutingAtStart();
            long restored = 0;
            for (Pending<T> p : recovered) { // before any new row: they are older
                for (T row : p.rows()) {
                    buffer(router.shardOf(table.appId(row)), row);
                    restored++;
                }
            }
            if (restored > 0) {
                LOG.info("restored {} rows the shards had not committed at the checkpoint; writing them again (a replay is a no-op)", restored);
            }
            PeriodicFlush.schedule(time, sink.flushIntervalMs, this::flushAll);
        }

        /**
         * Rows held by writers at another parallelism or with another assignment ({@code subscriptions.key-by} switched, a
         * new source epoch), restored here: Flink hands them to other subtasks than the ones their keys' newer rows now
         * reach, where an older row written after a newer one would be lost. Those the shards have applied since (a stop
         * with a savepoint holds a batch still in flight, which the stopping job then commits) are dropped; if any is still
         * not committed, the restore is refused, naming the way out. A shard that cannot say (down, or not reachable yet)
         * fails this attempt only: the job restarts and asks again, as it would for any write.
         */
        private Pending<T> uncommittedOnly(Pending<T> p) {
            Map<Integer, List<T>> byShard = new java.util.TreeMap<>();
            for (T row : p.rows()) {
                byShard.computeIfAbsent(router.shardOf(table.appId(row)), k -> new ArrayList<>()).add(row);
            }
            long notCommitted = 0;
            List<String> unanswered = new ArrayList<>();
            for (var e : byShard.entrySet()) {
                try (Connection c = shards.get(e.getKey()).connect("sluice-restore-check")) {
                    notCommitted += e.getValue().size() - table.applied(c, e.getValue()).size();
                } catch (SQLException error) {
                    Fatal.rethrowIfTerminal(e.getKey(), error); // no such table, a refused login: no restart fixes those
                    unanswered.add("shard " + e.getKey() + " (" + e.getValue().size() + " rows): " + error.getMessage());
                }
            }
            String now = "at parallelism " + parallelism + (p.assignment().equals(sink.assignment) ? "" : " with rows assigned " + sink.assignment);
            String then = "at parallelism " + p.parallelism() + (p.assignment().equals(sink.assignment) ? "" : " with rows assigned " + p.assignment());
            if (notCommitted > 0) {
                throw Fatal.stop("the " + sink.job + " job restores " + now + " from a checkpoint or savepoint whose shard "
                        + "sink, " + then + ", held " + p.rows().size() + " rows, " + notCommitted + " of which a shard has not "
                        + "committed (a shard was down or slow when the state was taken). Flink would hand them to other subtasks than the ones "
                        + "their keys' newer rows reach, where an older row could be written after a newer one and be lost. Restore " + then
                        + " (the settings that took the state), let the shards catch up (shard.<i>.pendingRows 0), take a new savepoint, and make "
                        + "the change from that one");
            }
            if (!unanswered.isEmpty()) {
                throw new IllegalStateException("the " + sink.job + " job restores " + now + " rows its shard sink held " + then
                        + ", and must first learn which of them the shards have committed; " + unanswered
                        + " could not say. This attempt fails and the job restarts and asks again (restart-strategy back-off)");
            }
            LOG.info("restored {} rows held at parallelism {}: every one is already committed on its shard, so none is written again",
                    p.rows().size(), p.parallelism());
            return new Pending<>(p.parallelism(), p.assignment(), List.of());
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
            return SluiceConfig.Shard.SINK_APPLICATION_PREFIX + sink.job;
        }

        /**
         * Buffers the row for its shard. A shard that holds {@code shards.max-pending-rows} rows already (it is down or
         * slow) is waited for here, while its batch retries: backpressure, as before this bound existed for every shard.
         */
        @Override
        public void write(T row, Context context) throws IOException, InterruptedException {
            int shard = router.shardOf(table.appId(row));
            if (pendingRows.get(shard) >= maxPendingRows) {
                flushShard(shard);
                while (pendingRows.get(shard) >= maxPendingRows) {
                    mailbox.yield(); // runs the mail that ends the shard's batch, and the periodic flush
                    flushShard(shard);
                }
            }
            buffer(shard, row);
            if (bufferedRows[shard] >= sink.flushMaxRows) {
                flushShard(shard);
            }
        }

        /** Buffers the row for {@code shard}, its app's shard. */
        private void buffer(int shard, T row) {
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
                bufferedRows[shard]++;
                if (pendingRows.incrementAndGet(shard) == 1) {
                    pendingSince.set(shard, System.currentTimeMillis());
                }
            }
        }

        /**
         * Before every checkpoint barrier: hands what is buffered to the shards that are not busy, and returns. Rows no
         * shard has committed yet are in the checkpoint ({@link #snapshotState}), so one shard that is down holds back
         * neither the others nor the checkpoint. At end of input it waits until every row is committed.
         */
        @Override
        public void flush(boolean endOfInput) throws IOException, InterruptedException {
            flushAll();
            while (endOfInput && hasPending()) {
                mailbox.yield();
                flushAll();
            }
            awaitHealthyShards();
            synchronized (this) { // deadLetter() writes it from the shard threads
                if (deadLetterProducer != null) {
                    deadLetterProducer.flush();
                }
            }
        }

        /**
         * Before a barrier, waits for the batches of shards that answer: at most {@link #HEALTHY_BATCH_MS} from when each
         * went out, and not for a shard whose batch has failed a try. Then hands over what they buffered meanwhile and
         * waits again. So with healthy shards a checkpoint holds no rows (and a savepoint can be restored at another
         * parallelism), while a shard that is down or hangs costs at most one such wait before its rows go into the
         * checkpoint instead.
         */
        private void awaitHealthyShards() throws IOException {
            for (boolean waited = true; waited; ) {
                waited = false;
                for (int shard = 0; shard < buffers.size(); shard++) {
                    CompletableFuture<?> batch = inFlight[shard];
                    if (batch == null || batchFailing.get(shard) == 1) {
                        continue;
                    }
                    long left = batchStartedAt.get(shard) + HEALTHY_BATCH_MS - System.currentTimeMillis();
                    if (left <= 0) {
                        continue;
                    }
                    try {
                        batch.get(left, TimeUnit.MILLISECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted while waiting for shard " + shard, e);
                    } catch (java.util.concurrent.TimeoutException | ExecutionException notYet) {
                        // a failure is rethrown by batchDone below
                    }
                    if (batch.isDone()) {
                        Throwable failure = null;
                        try {
                            batch.join();
                        } catch (CompletionException | java.util.concurrent.CancellationException e) {
                            failure = e;
                        }
                        batchDone(shard, batch, failure);
                        flushShard(shard);
                        waited = inFlight[shard] != null;
                    }
                }
            }
        }

        private boolean hasPending() {
            for (int shard = 0; shard < buffers.size(); shard++) {
                if (inFlight[shard] != null || !buffers.get(shard).get(0).isEmpty()) {
                    return true;
                }
            }
            return false;
        }

        /** The rows of the batches in flight, then the buffered ones, shard by shard: per key, in the order they must be written. */
        @Override
        public List<Pending<T>> snapshotState(long checkpointId) {
            List<T> rows = new ArrayList<>();
            for (int shard = 0; shard < buffers.size(); shard++) {
                if (inFlightRows[shard] != null) {
                    for (List<List<T>> chunk : inFlightRows[shard]) {
                        chunk.forEach(rows::addAll);
                    }
                }
                for (Map<Object, T> round : buffers.get(shard)) {
                    rows.addAll(round.values());
                }
            }
            return List.of(new Pending<>(parallelism, sink.assignment, rows)); // one per subtask, empty or not
        }

        private void flushAll() {
            for (int shard = 0; shard < buffers.size(); shard++) {
                flushShard(shard);
            }
        }

        /**
         * Hands the shard's buffered rows to its writers and returns without waiting: unless its batch before is still
         * in flight, then they wait in the buffer (merging further updates of the same keys) until it commits.
         */
        private void flushShard(int shard) {
            List<Map<Object, T>> rounds = buffers.get(shard);
            if (inFlight[shard] != null || rounds.get(0).isEmpty()) {
                return;
            }
            List<List<List<T>>> chunks = chunks(rounds);
            buffers.set(shard, new ArrayList<>(List.of(new LinkedHashMap<>())));
            bufferedRows[shard] = 0;
            if (pool == null) {
                pool = Executors.newFixedThreadPool(shards.size() * connectionsPerShard, r -> {
                    Thread t = new Thread(r, "sluice-shard-writer-" + sink.job);
                    t.setDaemon(true);
                    return t;
                });
            }
            batchStartedAt.set(shard, System.currentTimeMillis()); // before the writes start: one may fail at once
            batchFailing.set(shard, 0);
            inFlightRows[shard] = chunks;
            CompletableFuture<?>[] writes = new CompletableFuture<?>[chunks.size()];
            for (int slot = 0; slot < chunks.size(); slot++) {
                final int c = slot;
                writes[slot] = CompletableFuture.runAsync(() -> {
                    try {
                        commit(shard, c, chunks.get(c));
                    } catch (IOException e) {
                        throw new CompletionException(e);
                    }
                }, pool);
            }
            CompletableFuture<?> batch = CompletableFuture.allOf(writes);
            inFlight[shard] = batch;
            batch.whenComplete((ok, failure) -> {
                try {
                    mailbox.execute(() -> batchDone(shard, batch, failure), "shard %d batch done", shard);
                } catch (RejectedExecutionException closing) {
                    // the task is closing: its state is gone with it
                }
            });
        }

        /** On the task thread, once the shard's batch ended: its rows are committed, or the failure fails the task. */
        private void batchDone(int shard, CompletableFuture<?> batch, Throwable failure) throws IOException {
            if (inFlight[shard] != batch) {
                return;
            }
            inFlight[shard] = null;
            inFlightRows[shard] = null;
            if (failure != null) {
                Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
                if (cause instanceof RuntimeException r) {
                    throw r;
                }
                throw cause instanceof IOException io ? io : new IOException("a write to shard " + shard + " failed", cause);
            }
            if (bufferedRows[shard] >= sink.flushMaxRows) {
                flushShard(shard);
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
                    batchFailing.set(shard, 1);
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
                for (List<T> round : rounds) {
                    // a round holds each key once, so its statements may split it anywhere
                    for (int from = 0; from < round.size(); from += MAX_STATEMENT_ROWS) {
                        List<T> rows = round.subList(from, Math.min(round.size(), from + MAX_STATEMENT_ROWS));
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
