package io.sluice.jobs.sidekiq;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.testkit.RedisServer;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The bridge's sink writer against a real Redis, without Flink: what its enqueue script leaves behind when Redis refuses a job. */
class SidekiqSinkITCase {
    private static SluiceConfig.Sidekiq config(RedisServer redis) {
        return SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "x:1", "t").put("registry.url", "http://x", "t")
                .put("shards.urls", "jdbc:postgresql://x/a", "t").put("deployment.id", "t", "t").put("sidekiq.redis-url", redis.url(), "t")).sidekiq();
    }

    private static SidekiqPush push(String jid) {
        return new SidekiqPush(jid, "default", "{\"class\":\"PushWorker\",\"args\":[],\"queue\":\"default\",\"jid\":\"" + jid + "\"");
    }

    /** A queue key that is not a list stops the job naming it, and leaves no marker: the job is enqueued once the key is fixed. */
    @Test
    void aQueueKeyOfAnotherTypeStopsTheJobAndLeavesNoMarker(@TempDir Path dir) throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            SluiceConfig.Sidekiq config = config(redis);
            assertThat(redis.command("SET queue:default not-a-list")).isEqualTo("+OK");
            SidekiqSink.Writer w = new SidekiqSink.Writer(config, new UnregisteredMetricsGroup());
            w.write(push("j1"), null);
            assertThatThrownBy(() -> w.flush(false)).isInstanceOf(SuppressRestartsException.class)
                    .hasStackTraceContaining("Redis key queue:default holds another type").hasStackTraceContaining("nothing was enqueued for jid j1");
            w.close();
            assertThat(redis.command("EXISTS " + config.markerPrefix() + "j1")).as("marker of the refused job").isEqualTo(":0");
            redis.command("DEL queue:default");
            SidekiqSink.Writer again = new SidekiqSink.Writer(config, new UnregisteredMetricsGroup());
            again.write(push("j1"), null);
            again.flush(false);
            again.close();
            assertThat(redis.integer("LLEN queue:default")).as("the job, once the key is a queue again").isEqualTo(1);
        }
    }

    /** Another writer (a restored task) replaying a job finds its marker; the job is in the queue once. */
    @Test
    void aReplayFromAnotherWriterIsSkipped(@TempDir Path dir) throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            SluiceConfig.Sidekiq config = config(redis);
            for (int attempt = 0; attempt < 2; attempt++) {
                SidekiqSink.Writer w = new SidekiqSink.Writer(config, new UnregisteredMetricsGroup());
                w.write(push("j1"), null);
                w.write(push("j2"), null);
                w.flush(false);
                w.close();
            }
            assertThat(redis.integer("LLEN queue:default")).isEqualTo(2);
            assertThat(redis.command("SMEMBERS queues")).isEqualTo("*1");
            assertThat(redis.integer("PTTL " + config.markerPrefix() + "j1")).as("marker TTL, ms").isBetween(7 * 86_400_000L - 60_000, 7 * 86_400_000L);
        }
    }

    /**
     * The script itself: a job's first try enqueues it (1); the same token again, as when a batch is resent because its
     * answer was lost, is reported as enqueued (2) without a second push; another token, as from a restored writer, is a
     * replay (0); and a second copy of a jid within one batch has its own token, so it counts as a replay too.
     */
    @Test
    void theScriptTellsALostAnswerFromAReplay(@TempDir Path dir) throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis")); Redis r = new Redis(config(redis))) {
            SluiceConfig.Sidekiq config = config(redis);
            String[] args = {"EVAL", SidekiqSink.ENQUEUE_ONCE, "3", config.markerPrefix() + "j1", "queue:default", "queues", "60000",
                    push("j1").payloadHead(), "default", ",\"enqueued_at\":1.0", "w.0.0"};
            assertThat(r.call(args)).isEqualTo(1L);
            assertThat(r.call(args)).as("the same job's token again: its answer was lost").isEqualTo(2L);
            args[10] = "w.0.1";
            assertThat(r.call(args)).as("another token: a replay, or a second copy in one batch").isEqualTo(0L);
            assertThat(redis.integer("LLEN queue:default")).isEqualTo(1);
            assertThat(r.call("LINDEX", "queue:default", "0")).asString().endsWith(",\"enqueued_at\":1.0}");
        }
    }
}
