package io.sluice.jobs.sidekiq;

import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.common.Fatal;
import io.sluice.jobs.common.ForwardingSource;
import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.metrics.MetricGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A source that stops taking records while Sidekiq's queues are long: the queue-depth limiter of the bridge. Each reader
 * reads the length of every queue the bridge writes ({@code LLEN}, summed) every {@value #POLL_MS} ms and may take
 * {@code (sidekiq.max-queue-length − length) / parallelism} records until the next reading; with none left, it reports
 * nothing available and waits for a reading that allows more. The backlog stays in Kafka. A source that waits still takes
 * checkpoints (they reach it as mail, not through its input), so checkpoints complete however long Sidekiq is stopped,
 * where a sink blocked in {@code write()} would hold every barrier. The queues can exceed the limit by what the sink holds
 * unsent when a reading is taken: at most one batch ({@code sidekiq.batch-size}) per subtask, plus one record per subtask
 * when the room left is less than the parallelism. Redis unreachable: no records are taken until it answers. Everything
 * else is the wrapped source's.
 *
 * <p>Metrics: {@code sidekiq.queueLength} (the last reading, −1 while Redis does not answer), {@code sidekiq.waitingMs}
 * (time spent with nothing allowed, the current wait included), {@code sidekiq.limited} (1 while waiting).
 */
public final class QueueLimitedSource<T, S extends SourceSplit, E> extends ForwardingSource<T, S, E> {
    private static final long serialVersionUID = 1L;
    static final long POLL_MS = 100;

    private final SluiceConfig.Sidekiq config;

    public QueueLimitedSource(Source<T, S, E> source, SluiceConfig.Sidekiq config) {
        super(source);
        this.config = config;
    }

    @Override
    public SourceReader<T, S> createReader(SourceReaderContext context) throws Exception {
        MetricGroup metrics = context.metricGroup().addGroup("sidekiq");
        return new Reader<>(source.createReader(context), new Gate(config, context.currentParallelism(), metrics), metrics);
    }

    /** How many records the reader may take, from the queue lengths a thread of its own reads. */
    static final class Gate implements AutoCloseable {
        private static final Logger LOG = LoggerFactory.getLogger(Gate.class);
        private final SluiceConfig.Sidekiq config;
        private final int parallelism;
        private final AtomicLong allowed = new AtomicLong();
        private volatile long queueLength = -1;
        private CompletableFuture<Void> opened = new CompletableFuture<>();
        private final Thread poller;
        private volatile boolean closed;
        /** The poller's connection, and its socket while it connects: closed by {@link #close} to end a connect or read in progress. */
        private volatile Redis redis;
        private volatile java.net.Socket connecting;
        /** What ended the poller other than a Redis that does not answer; thrown to the task by {@link #check}. */
        private volatile Throwable failure;

        Gate(SluiceConfig.Sidekiq config, int parallelism, MetricGroup metrics) {
            this.config = config;
            this.parallelism = Math.max(1, parallelism);
            metrics.gauge("queueLength", () -> queueLength);
            poller = new Thread(this::poll, "sluice-sidekiq-queue-depth");
            poller.setDaemon(true);
        }

        void start() {
            poller.start();
        }

        private void poll() {
            boolean failing = false;
            List<String[]> lengths = new ArrayList<>();
            for (String q : config.queues()) {
                lengths.add(new String[] {"LLEN", "queue:" + q});
            }
            try {
                while (!closed) {
                    try {
                        if (redis == null) {
                            redis = new Redis(config, socket -> connecting = socket);
                        }
                        long length = 0;
                        List<Object> replies = redis.pipeline(lengths);
                        for (int i = 0; i < replies.size(); i++) {
                            Object r = replies.get(i);
                            if (!(r instanceof Long n)) {
                                String refused = r instanceof Redis.Error e ? refusal(e.message(), lengths.get(i)[1]) : null;
                                if (refused != null) {
                                    stop(refused);
                                    return;
                                }
                                throw new IOException("Redis answered " + r + " to LLEN " + lengths.get(i)[1]);
                            }
                            length += n;
                        }
                        queueLength = length;
                        long room = config.maxQueueLength() - length;
                        set(room <= 0 ? 0 : Math.max(1, room / parallelism));
                        if (failing) {
                            LOG.info("Redis answers the queue-length reads again");
                            failing = false;
                        }
                    } catch (IOException | RuntimeException e) { // a RuntimeException: a reply that is not RESP
                        String refused = e instanceof IOException ? refusal(String.valueOf(e.getMessage()), null) : null;
                        if (refused != null) { // AUTH refused when it connected
                            stop(refused);
                            return;
                        }
                        closeRedis();
                        queueLength = -1;
                        set(0);
                        if (!failing && !closed) {
                            LOG.warn("Redis at {}:{} does not answer the queue-length reads; no records are taken until it does: {}",
                                    config.redisHost(), config.redisPort(), e.toString());
                            failing = true;
                        }
                    }
                    Thread.sleep(POLL_MS);
                }
            } catch (InterruptedException e) {
                // closing
            } catch (Throwable e) { // an Error: the task fails (pollNext throws it) instead of waiting for ever for a reading
                failure = e;
                synchronized (this) {
                    opened.complete(null); // never exceptionally: Flink treats a failed availability future as fatal for the TaskManager
                }
            } finally {
                closeRedis();
            }
        }

        /**
         * Why the job must stop for Redis' error {@code message} (to LLEN {@code key}, or to AUTH or SELECT when {@code key} is
         * null), or null for an error a retry can outlast (a restart's LOADING, a failover's READONLY, BUSY, a dropped
         * connection). A queue key of another type, a refused password, an ACL without the commands, a database that does not
         * exist never heal: waiting for them would hold every queue's records in Kafka for ever, as if Sidekiq were slow.
         */
        static String refusal(String message, String key) {
            if (message.contains("WRONGTYPE") && key != null) {
                return "Redis key " + key + " holds another type than a Sidekiq queue (a list), so the bridge cannot read its length: "
                        + message + ". Remove or rename it, or choose other queues (sidekiq.queue, sidekiq.overrides)";
            }
            if (message.contains("NOAUTH") || message.contains("WRONGPASS") || message.contains("invalid password")
                    || message.contains("without any password configured") || message.contains("no password is set")) {
                return "Redis refused the Sidekiq bridge's credentials: " + message + ". Check sidekiq.redis-password (or "
                        + "SLUICE_SIDEKIQ_REDIS_PASSWORD) against the server's requirepass or ACL user";
            }
            if (message.contains("NOPERM")) {
                return "Redis' ACL does not let the Sidekiq bridge's user run what it needs: " + message + ". Grant it LLEN, EVALSHA, "
                        + "SCRIPT LOAD and the queue:*, queues and marker keys, or use another user";
            }
            if (message.contains("DB index is out of range")) {
                return "the database sidekiq.redis-url names does not exist on this Redis (" + message + "); fix its number (redis://host:port/<db>)";
            }
            return null;
        }

        /** Ends the poller with a failure no restart fixes: the task throws it at its next record ({@link #check}). */
        private void stop(String why) {
            LOG.error("the Sidekiq bridge stops: {}", why);
            failure = Fatal.stop(why);
            synchronized (this) {
                opened.complete(null); // never exceptionally: Flink treats a failed availability future as fatal for the TaskManager
            }
        }

        private void closeRedis() {
            Redis r = redis;
            redis = null;
            if (r != null) {
                r.close();
            }
            java.net.Socket s = connecting;
            if (s != null) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing anyway
                }
            }
        }

        /** Throws what ended the poller, if anything did. */
        void check() {
            Throwable f = failure;
            if (f instanceof RuntimeException stop) { // from stop(): the job ends without restarts
                throw stop;
            }
            if (f != null) {
                throw new IllegalStateException("the queue-length reader of the Sidekiq bridge stopped", f);
            }
        }

        private void set(long n) {
            allowed.set(n);
            if (n > 0) {
                synchronized (this) {
                    opened.complete(null);
                }
            }
        }

        /** Takes one record's allowance; false when none is left. */
        boolean take() {
            return allowed.getAndUpdate(n -> n > 0 ? n - 1 : 0) > 0;
        }

        boolean open() {
            return allowed.get() > 0;
        }

        /** Completes when a reading allows records, or the reader stopped (then {@link #check} throws why). */
        synchronized CompletableFuture<Void> whenOpen() {
            if (opened.isDone()) {
                opened = new CompletableFuture<>();
            }
            if (allowed.get() > 0 || failure != null) {
                opened.complete(null);
            }
            return opened;
        }

        @Override
        public void close() throws InterruptedException {
            closed = true;
            poller.interrupt();
            closeRedis(); // ends a connect or read the interrupt does not
            poller.join(5_000);
        }
    }

    static final class Reader<T, S extends SourceSplit> extends ForwardingSource.Reader<T, S> {
        private final Gate gate;
        /** Time spent waiting before the current wait, and when the current one began (0: not waiting). */
        private volatile long waitedMs;
        private volatile long waitingSince;

        Reader(SourceReader<T, S> reader, Gate gate, MetricGroup metrics) {
            super(reader);
            this.gate = gate;
            metrics.gauge("waitingMs", () -> {
                long since = waitingSince;
                return waitedMs + (since > 0 ? System.currentTimeMillis() - since : 0);
            });
            metrics.gauge("limited", () -> waitingSince > 0 ? 1 : 0);
        }

        @Override
        public void start() {
            gate.start();
            reader.start();
        }

        @Override
        public InputStatus pollNext(ReaderOutput<T> output) throws Exception {
            gate.check();
            if (!gate.take()) {
                if (waitingSince == 0) {
                    waitingSince = System.currentTimeMillis();
                }
                return InputStatus.NOTHING_AVAILABLE;
            }
            if (waitingSince > 0) {
                waitedMs += System.currentTimeMillis() - waitingSince;
                waitingSince = 0;
            }
            return reader.pollNext(output); // emits at most one record
        }

        @Override
        public CompletableFuture<Void> isAvailable() {
            return gate.open() ? reader.isAvailable() : gate.whenOpen();
        }

        @Override
        public void close() throws Exception {
            try {
                gate.close();
            } finally {
                reader.close();
            }
        }
    }
}
