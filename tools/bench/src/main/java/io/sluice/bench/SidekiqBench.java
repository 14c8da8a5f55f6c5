package io.sluice.bench;

import io.sluice.core.avro.ConfluentWire;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.core.model.PushJob;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.jobs.sidekiq.SidekiqBridgeJob;
import io.sluice.jobs.sidekiq.SidekiqSink;
import io.sluice.local.LocalFlink;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.RedisServer;
import io.sluice.testkit.SidekiqWorkers;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The Sidekiq bridge against a real Redis (AOF, fsync on every write) and a real Sidekiq (Debian's {@code redis-server}
 * and {@code ruby-sidekiq}). {@code bench.pushes} push jobs wait in {@code push-queue}; then
 * <ol>
 * <li>the bridge alone (no Sidekiq running, no queue limit) enqueues them: jobs enqueued per second, from the first job
 *     in the queue to the last;</li>
 * <li>Sidekiq ({@code bench.sidekiq-concurrency} threads, the test kit's worker that appends each job's jid to a file)
 *     runs them: jobs per second, from the first one gone from the queue to the last one run.</li>
 * </ol>
 * Both rates come from the same run, with the bridge's checkpoints every second (each waits for Redis to answer).
 */
final class SidekiqBench implements Bench.Scenario {
    private final int pushes;
    private final int concurrency;

    SidekiqBench(RawConfig raw) {
        pushes = raw.integer("bench.pushes", 200_000, 1_000, 50_000_000);
        concurrency = raw.integer("bench.sidekiq-concurrency", 10, 1, 200);
    }

    @Override
    public String run(EmbeddedStack stack, LocalFlink flink) throws Exception {
        Path dir = Path.of("target", "sluice-bench", "sidekiq").toAbsolutePath();
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            var ns = stack.namespace("bench-sidekiq-", 4, Map.of("sidekiq.redis-url", redis.url(), "sidekiq.start-from", "earliest", "sidekiq.max-queue-length", "100000000"));
            SluiceConfig config = ns.config();
            produce(config, ns.schemaIds().get(config.kafka().pushQueueTopic()));
            System.out.printf(Locale.ROOT, "[1/2 bridge] %,d push jobs in %s; the bridge enqueues them, no Sidekiq running%n", pushes, config.kafka().pushQueueTopic());

            StreamExecutionEnvironment env = flink.environment();
            env.enableCheckpointing(1_000);
            SidekiqBridgeJob.defineWorkflow(env, config, SidekiqBridgeJob.source(config, false), new SidekiqSink(config.sidekiq()), KafkaIo.deadLetterSink(config));
            JobClient job = env.executeAsync("bench-sidekiq-bridge");
            double bridgeRate;
            double sidekiqRate;
            try {
                bridgeRate = rate("1/2 bridge", "enqueued", () -> redis.integer("LLEN queue:default"), pushes);
            } finally {
                job.cancel().get();
            }
            System.out.printf(Locale.ROOT, "[1/2 bridge] %,.0f Sidekiq jobs enqueued per second%n", bridgeRate);

            System.out.printf(Locale.ROOT, "[2/2 sidekiq] Sidekiq with %d threads runs the %,d jobs%n", concurrency, pushes);
            try (SidekiqWorkers sidekiq = SidekiqWorkers.start(redis, dir.resolve("sidekiq"), concurrency, "default")) {
                Path log = dir.resolve("sidekiq").resolve("jids.log");
                sidekiqRate = rate("2/2 sidekiq", "run", () -> {
                    sidekiq.processed(); // fails if Sidekiq died
                    try (Stream<String> lines = Files.lines(log, StandardCharsets.UTF_8)) {
                        return lines.count();
                    }
                }, pushes);
            }
            System.out.printf(Locale.ROOT, "[2/2 sidekiq] %,.0f jobs run per second%n", sidekiqRate);
            return String.format(Locale.ROOT, "bridge_jobs_per_s=%.0f sidekiq_jobs_per_s=%.0f bridge_vs_sidekiq=%.2f pushes=%d sidekiq_concurrency=%d",
                    bridgeRate, sidekiqRate, bridgeRate / sidekiqRate, pushes, concurrency);
        }
    }

    private void produce(SluiceConfig config, int schemaId) throws Exception {
        ConfluentWire wire = new ConfluentWire(schemaId, SluiceAvro.PUSH_JOB.schema());
        String topic = config.kafka().pushQueueTopic();
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(KafkaClients.clientProperties(config), new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < pushes; i++) {
                PushJob j = new PushJob(String.format("%024x", i), "app-" + (i % 50), "user-" + i, "welcome", "Hello, user " + i, 1_700_000_000_000L + i);
                p.send(new ProducerRecord<>(topic, j.key().getBytes(StandardCharsets.UTF_8), wire.encode(SluiceAvro.PUSH_JOB.toAvro(j))));
            }
            p.flush();
        }
    }

    interface Count {
        long get() throws Exception;
    }

    /** Polls {@code done} every 100 ms until it reaches {@code total}; the rate from the first change to the end, with a progress line every 5 s. */
    private static double rate(String phase, String what, Count done, long total) throws Exception {
        long deadline = System.nanoTime() + 600_000_000_000L;
        long firstAt = 0;
        long firstCount = 0;
        long lastPrint = System.nanoTime();
        for (long n = done.get(); n < total; n = done.get()) {
            long now = System.nanoTime();
            if (firstAt == 0 && n > 0) {
                firstAt = now;
                firstCount = n;
            }
            if (now - lastPrint > 5_000_000_000L) {
                System.out.printf(Locale.ROOT, "[%s] ... %,d of %,d %s%n", phase, n, total, what);
                lastPrint = now;
            }
            BenchSupport.check(now < deadline, phase + ": " + n + " of " + total + " " + what + " after 10 min");
            Thread.sleep(100);
        }
        long end = System.nanoTime();
        return (total - firstCount) / Math.max(1e-3, (end - firstAt) / 1e9);
    }
}
