package io.sluice.jobs.sidekiq;

import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.common.Fatal;
import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Enqueues Sidekiq jobs into Redis the way Sidekiq's own client does ({@code LPUSH queue:<name>} and {@code SADD queues
 * <name>}), once per {@code jid}: one Lua script per job pushes only if the marker {@code <sidekiq.marker-prefix><jid>} is
 * not there, then writes the marker (with {@code sidekiq.dedup-ttl}), atomically. So a replay after a Flink restore (the
 * source re-reads from the last checkpoint's offsets) skips every job already enqueued, for as long as its marker lives. A
 * key of another type than the script expects stops the job without a restart, naming the key.
 *
 * <p>Jobs go out in pipelined batches of {@code sidekiq.batch-size}, every 100 ms, and before each checkpoint barrier, which
 * waits until Redis has answered for every job before it: a completed checkpoint never covers a job Redis has not taken.
 * With {@code appendonly yes} and {@code appendfsync always}, Redis answers after the script's writes are on disk, so a
 * Redis crash loses no job the sink counted. Redis down, or not answering within {@code sidekiq.socket-timeout}: the
 * batch is sent again on a new connection with backoff from 100 ms doubling to 5 s, for as long as it takes (backpressure;
 * the markers make the retry a no-op for jobs that got in). Metrics: {@code sidekiq.jobsEnqueued},
 * {@code sidekiq.duplicatesSkipped}, {@code sidekiq.retries}.
 */
public final class SidekiqSink implements Sink<SidekiqPush> {
    private static final long serialVersionUID = 1L;
    static final long FLUSH_INTERVAL_MS = 100;
    /**
     * KEYS: marker, queue list, the {@code queues} set. ARGV: marker TTL ms, payload, queue name, enqueued_at, this job's token
     * (writer, batch, position). Returns 1 if enqueued, 2 if an earlier try of this same batch enqueued it (its answer was
     * lost), 0 if the marker was there from elsewhere (a replay), or −1, −2, −3 if the marker, the queue or {@code queues} key
     * holds another type, before writing anything. The marker is written last: Redis does not undo a script's writes when a
     * later command fails, and a marker without its job would drop the job for good.
     */
    static final String ENQUEUE_ONCE = """
            local function wrong(key, want)
              local t = redis.call('TYPE', key).ok
              return t ~= 'none' and t ~= want
            end
            if wrong(KEYS[1], 'string') then return -1 end
            if wrong(KEYS[2], 'list') then return -2 end
            if wrong(KEYS[3], 'set') then return -3 end
            local seen = redis.call('GET', KEYS[1])
            if seen then
              if seen == ARGV[5] then return 2 end
              return 0
            end
            redis.call('SADD', KEYS[3], ARGV[3])
            redis.call('LPUSH', KEYS[2], ARGV[2] .. ARGV[4] .. '}')
            redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[1])
            return 1
            """;

    private final SluiceConfig.Sidekiq config;

    public SidekiqSink(SluiceConfig.Sidekiq config) {
        this.config = config;
    }

    @Override
    public SinkWriter<SidekiqPush> createWriter(WriterInitContext context) {
        Writer w = new Writer(config, context.metricGroup().addGroup("sidekiq"));
        PeriodicFlush.schedule(context.getProcessingTimeService(), FLUSH_INTERVAL_MS, w::send);
        return w;
    }

    static final class Writer implements SinkWriter<SidekiqPush> {
        private static final Logger LOG = LoggerFactory.getLogger(Writer.class);

        private final SluiceConfig.Sidekiq config;
        private final List<SidekiqPush> batch = new ArrayList<>();
        private final Counter enqueued;
        private final Counter duplicates;
        private final Counter retries;
        private Redis redis;
        private String scriptSha;
        /** Names this writer's jobs in the markers it writes (short: a marker lives for days), so a resent batch tells its own earlier writes from replays. */
        private final String writerId = Long.toString(new java.security.SecureRandom().nextLong() & Long.MAX_VALUE, 36);
        private long batchNumber;

        Writer(SluiceConfig.Sidekiq config, MetricGroup metrics) {
            this.config = config;
            this.enqueued = metrics.counter("jobsEnqueued");
            this.duplicates = metrics.counter("duplicatesSkipped");
            this.retries = metrics.counter("retries");
        }

        @Override
        public void write(SidekiqPush push, Context context) throws IOException, InterruptedException {
            batch.add(push);
            if (batch.size() >= config.batchSize()) {
                send();
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException, InterruptedException {
            send();
        }

        /** Sends the batch until Redis has answered for every job in it. */
        void send() throws IOException, InterruptedException {
            if (batch.isEmpty()) {
                return;
            }
            long backoff = 100;
            String token = writerId + "." + Long.toString(batchNumber++, 36) + ".";
            for (int attempt = 1; ; attempt++) {
                try {
                    sendOnce(token);
                    batch.clear();
                    return;
                } catch (IOException e) {
                    close();
                    retries.inc();
                    LOG.warn("Redis at {}:{} did not take a batch of {} Sidekiq jobs (attempt {}), retrying in {} ms: {}",
                            config.redisHost(), config.redisPort(), batch.size(), attempt, backoff, e.getMessage());
                    Thread.sleep(backoff);
                    backoff = Math.min(backoff * 2, 5_000);
                }
            }
        }

        /** One try of the batch; counts only when Redis answered for every job, so a resent batch is not counted twice. */
        private void sendOnce(String token) throws IOException {
            if (redis == null) {
                redis = new Redis(config);
                Object sha = redis.call("SCRIPT", "LOAD", ENQUEUE_ONCE);
                if (!(sha instanceof String s)) {
                    throw new IOException("Redis did not load the enqueue script: " + sha);
                }
                scriptSha = s;
            }
            String ttl = String.valueOf(config.dedupTtlMs());
            List<String[]> commands = new ArrayList<>(batch.size());
            StringBuilder at = new StringBuilder();
            SidekiqMapping.timestamp(at.append(",\"enqueued_at\":"), System.currentTimeMillis(), config.epochMillis());
            String enqueuedAt = at.toString();
            for (int i = 0; i < batch.size(); i++) {
                SidekiqPush p = batch.get(i);
                commands.add(new String[] {"EVALSHA", scriptSha, "3", config.markerPrefix() + p.jid(), "queue:" + p.queue(), "queues",
                        ttl, p.payloadHead(), p.queue(), enqueuedAt, token + Integer.toString(i, 36)});
            }
            List<Object> replies = redis.pipeline(commands);
            long in = 0;
            long skipped = 0;
            for (int i = 0; i < replies.size(); i++) {
                Object r = replies.get(i);
                SidekiqPush p = batch.get(i);
                long code = r instanceof Long n ? n : Long.MIN_VALUE;
                if (code == 0) {
                    skipped++;
                } else if (code > 0) {
                    in++;
                } else if (code != Long.MIN_VALUE || (r instanceof Redis.Error e && e.message().contains("WRONGTYPE"))) {
                    String key = code == -1 ? config.markerPrefix() + p.jid() : code == -2 ? "queue:" + p.queue() : code == -3 ? "queues"
                            : "a key the enqueue script touches (" + config.markerPrefix() + p.jid() + ", queue:" + p.queue() + " or queues)";
                    throw Fatal.stop("Redis key " + key + " holds another type than Sidekiq (or the bridge's markers) use: " + r + ". Remove or rename it "
                            + "(sidekiq.queue, sidekiq.overrides, sidekiq.marker-prefix); nothing was enqueued for jid " + p.jid());
                } else {
                    // NOSCRIPT after a Redis restart, OOM, READONLY on a replica, LOADING: the whole batch is sent again on a new
                    // connection (which loads the script); the markers make the jobs that got in answer 2
                    throw new IOException("Redis answered " + r + " to the enqueue script");
                }
            }
            enqueued.inc(in);
            duplicates.inc(skipped);
        }

        @Override
        public void close() {
            if (redis != null) {
                redis.close();
                redis = null;
            }
        }
    }
}
