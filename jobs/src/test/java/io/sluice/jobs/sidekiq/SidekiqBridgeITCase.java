package io.sluice.jobs.sidekiq;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.core.model.PushJob;
import io.sluice.core.setup.StackSetup;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.testkit.Await;
import io.sluice.testkit.Faults;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.RedisServer;
import io.sluice.testkit.SidekiqWorkers;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import io.sluice.core.avro.ConfluentWire;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericData;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.util.ExceptionUtils;
import org.apache.flink.testutils.junit.SharedObjectsExtension;
import org.apache.flink.testutils.junit.SharedReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The Kafka → Sidekiq bridge against a real Redis ({@code redis-server}, append-only file fsynced on every write) and a
 * real Sidekiq running Ruby workers that record every job they run. Push jobs are produced to the bridged topic in Kafka
 * transactions, one of them aborted, beside records that cannot be jobs.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class SidekiqBridgeITCase {
    static final String VIP_APP = "app-vip";
    private static final ObjectMapper JSON = new ObjectMapper();

    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    @RegisterExtension
    final SharedObjectsExtension shared = SharedObjectsExtension.create();

    /**
     * 20,000 pushes, 100 in an aborted transaction, 3 records that cannot be jobs. The bridge's task fails once after
     * 1,500 jobs (it restores from its last checkpoint and re-reads what came after it), and Redis is SIGKILLed and
     * restarted while the bridge writes (Sidekiq is not running yet: its own fetch can lose a job Redis popped for it
     * just before a crash, which is Sidekiq's promise, not the bridge's). Redis then holds every push exactly once, and
     * Sidekiq runs each once, with the class and queue the configuration gives; the aborted ones never; the 3 are dead
     * letters with their reasons.
     */
    @Test
    void sidekiqRunsEveryPushOnceAcrossATaskFailureAndARedisCrash(TestStack base, @TempDir Path dir, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            TestStack stack = base.fresh(Map.of("sidekiq.redis-url", redis.url(), "sidekiq.start-from", "earliest",
                    "sidekiq.overrides", VIP_APP + "/vip=VipPushWorker@vip", "sidekiq.batch-size", "100", "sidekiq.max-queue-length", "100000"));
            List<PushJob> pushes = pushes(20_000, 0);
            List<PushJob> aborted = pushes(100, 1_000_000);
            produce(stack, pushes, aborted);
            String topic = stack.config().kafka().pushQueueTopic();
            try (KafkaProducer<byte[], byte[]> p = stack.producer(Map.of())) {
                p.send(new ProducerRecord<>(topic, "x".getBytes(StandardCharsets.UTF_8), "not avro".getBytes(StandardCharsets.UTF_8))).get();
                p.send(new ProducerRecord<>(topic, null, stack.encode(new PushJob("", "app-1", "u", "c", "no jid", 1L)))).get();
                p.send(new ProducerRecord<>(topic, null, withoutUserId(stack))).get();
            }
            Map<String, PushJob> expected = pushes.stream().collect(Collectors.toMap(PushJob::jobId, Function.identity()));
            SharedReference<Faults.ThrowOnce> fault = shared.add(new Faults.ThrowOnce(1_500));
            FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
            JobClient job = start(stack, new Faults.ThrowOnceStatelessSink<>(new SidekiqSink(stack.config().sidekiq()), fault));
            try {
                long atKill = Await.until("the injected task failure, then 8,000 jobs in Redis", Duration.ofMinutes(1), Duration.ofMillis(5),
                        () -> fault.get().thrown() ? queued(redis) : 0, n -> n >= 8_000);
                redis.kill(); // while the bridge writes: a batch in flight gets no answer, and is sent again after the restart
                redis.start();
                long afterRestart = queued(redis);
                Await.until("all " + expected.size() + " pushes in Redis", Duration.ofMinutes(1), Duration.ofMillis(100), () -> queued(redis),
                        n -> n >= expected.size());
                System.out.printf("Redis SIGKILLed with %,d jobs queued, %,d after the restart (the append-only file); now %,d for %,d pushes%n",
                        atKill, afterRestart, queued(redis), expected.size());
                assertThat(atKill).as("jobs queued when Redis was killed: the bridge was still writing").isLessThan(expected.size());
                assertThat(afterRestart).as("jobs Redis still had after the SIGKILL (appendfsync always)").isGreaterThanOrEqualTo(atKill);
                assertThat(queued(redis)).as("jobs in Redis: every push once").isEqualTo(expected.size());
                List<JsonNode> ran;
                try (SidekiqWorkers sidekiq = SidekiqWorkers.start(redis, dir.resolve("sidekiq"), 10, "default", "vip")) {
                    Await.until("Sidekiq to run all " + expected.size() + " pushes", Duration.ofMinutes(2), Duration.ofMillis(200),
                            () -> progress(sidekiq, redis, expected.keySet()), p -> p.missing().isEmpty());
                    ran = sidekiq.processed();
                }
                Map<String, Long> runs = ran.stream().collect(Collectors.groupingBy(j -> j.path("jid").asText(), Collectors.counting()));
                // the restored bridge read jobs again and their markers skipped them (the metric of its current attempt)
                TestFlink.awaitMetric(rest, job.getJobID().toString(), "enqueue into Sidekiq", "sidekiq.duplicatesSkipped", "sum", v -> v > 0);
                System.out.printf("Sidekiq ran %,d jobs for %,d pushes across a task failure and a Redis SIGKILL; replays skipped by the bridge "
                        + "since its last restart: %.0f%n", ran.size(), expected.size(),
                        rest.metric(job.getJobID().toString(), "enqueue into Sidekiq", "sidekiq.duplicatesSkipped", "sum"));
                assertThat(runs).as("Sidekiq runs per jid").containsOnlyKeys(expected.keySet()).allSatisfy((jid, n) -> assertThat(n).as(jid).isEqualTo(1));
                for (JsonNode j : ran) {
                    PushJob p = expected.get(j.path("jid").asText());
                    assertThat(j.path("class").asText()).as("worker class of " + p).isEqualTo(p.appId().equals(VIP_APP) ? "VipPushWorker" : "PushWorker");
                    assertThat(j.path("args")).as("args of " + p.jobId())
                            .isEqualTo(JSON.valueToTree(List.of(p.appId(), p.userId(), p.campaignId(), p.message(), p.jobId(), p.createdAt())));
                }
                List<ConsumerRecord<byte[], byte[]>> dead = Await.until("3 dead letters", Duration.ofSeconds(30), Duration.ofMillis(200),
                        () -> stack.readAll(stack.config().kafka().deadLettersTopic()), d -> d.size() >= 3);
                assertThat(dead).hasSize(3);
                assertThat(dead).allSatisfy(d -> assertThat(TestStack.header(d, DeadLetterSerializer.OFFSET)).as("source offset").isNotNull());
                assertThat(dead.stream().map(d -> TestStack.header(d, DeadLetterSerializer.STAGE)).sorted().toList()).containsExactly("decode", "sidekiq", "sidekiq");
                assertThat(dead.stream().map(d -> TestStack.header(d, DeadLetterSerializer.REASON)).sorted().toList()).satisfiesExactly(
                        r -> assertThat(r).contains("not-wire-format"),
                        r -> assertThat(r).contains("field user_id of sidekiq.args is not in schema test.PartialPush"),
                        r -> assertThat(r).contains("job_id (sidekiq.jid-field, the jid) is empty"));
            } finally {
                fault.get().disarm();
                job.cancel().get();
            }
        }
    }

    private static long queued(RedisServer redis) throws java.io.IOException {
        return redis.integer("LLEN queue:default") + redis.integer("LLEN queue:vip");
    }

    /**
     * Sidekiq stopped (SIGSTOP) for 8 s, longer than the 3 s checkpoint timeout, with 3,000 pushes waiting and
     * {@code sidekiq.max-queue-length} 200: the queue never holds more than 200 plus one batch (50), checkpoints keep
     * completing, and the rest waits in Kafka. After SIGCONT every push runs once.
     */
    @Test
    void aStoppedSidekiqKeepsTheBacklogInKafkaWhileCheckpointsComplete(TestStack base, @TempDir Path dir, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            TestStack stack = base.fresh(Map.of("sidekiq.redis-url", redis.url(), "sidekiq.start-from", "earliest", "sidekiq.max-queue-length", "200",
                    "sidekiq.batch-size", "50"));
            List<PushJob> pushes = pushes(3_000, 0);
            produce(stack, pushes, List.of());
            FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
            try (SidekiqWorkers sidekiq = SidekiqWorkers.start(redis, dir.resolve("sidekiq"), 5, "default")) {
                sidekiq.pause();
                JobClient job = start(stack, new SidekiqSink(stack.config().sidekiq()));
                String jobId = job.getJobID().toString();
                try {
                    Await.until("the queue to reach the limit", Duration.ofMinutes(1), Duration.ofMillis(50),
                            () -> redis.integer("LLEN queue:default"), n -> n >= 150);
                    long checkpointsBefore = rest.completedCheckpointCount(jobId);
                    long maxLength = 0;
                    long until = System.currentTimeMillis() + 8_000;
                    while (System.currentTimeMillis() < until) {
                        maxLength = Math.max(maxLength, redis.integer("LLEN queue:default"));
                        Thread.sleep(20);
                    }
                    long checkpointsDuring = rest.completedCheckpointCount(jobId) - checkpointsBefore;
                    TestFlink.awaitMetric(rest, jobId, "bridged records", "sidekiq.limited", "max", v -> v == 1);
                    TestFlink.awaitMetric(rest, jobId, "bridged records", "sidekiq.waitingMs", "max", v -> v >= 5_000);
                    double waited = rest.metric(jobId, "bridged records", "sidekiq.waitingMs", "max");
                    long lag = lag(stack, stack.config().kafka().pushQueueTopic());
                    System.out.printf("Sidekiq stopped 8 s: queue length at most %d (limit 200, batch 50); %d checkpoints completed; source waited %.0f ms; "
                            + "%,d records waiting in Kafka%n", maxLength, checkpointsDuring, waited, lag);
                    assertThat(maxLength).as("longest queue:default while Sidekiq was stopped").isLessThanOrEqualTo(250);
                    assertThat(checkpointsDuring).as("checkpoints completed in 8 s while Sidekiq was stopped (timeout 3 s)").isGreaterThanOrEqualTo(5);
                    assertThat(rest.get("/jobs/" + jobId + "/metrics?get=numRestarts").path(0).path("value").asText())
                            .as("restarts of the bridge while Sidekiq was stopped").isEqualTo("0");
                    assertThat(lag).as("records the bridge left in Kafka while Sidekiq was stopped").isGreaterThan(2_000);
                    sidekiq.resume();
                    Set<String> expected = pushes.stream().map(PushJob::jobId).collect(Collectors.toSet());
                    List<JsonNode> ran = Await.until("Sidekiq to run all " + expected.size() + " pushes after SIGCONT", Duration.ofMinutes(2), Duration.ofMillis(200),
                            sidekiq::processed, r -> r.size() >= expected.size());
                    Map<String, Long> runs = ran.stream().collect(Collectors.groupingBy(j -> j.path("jid").asText(), Collectors.counting()));
                    assertThat(runs).as("Sidekiq runs per jid").containsOnlyKeys(expected).allSatisfy((jid, n) -> assertThat(n).as(jid).isEqualTo(1));
                } finally {
                    job.cancel().get();
                }
            }
        }
    }

    /**
     * A first start with the default {@code sidekiq.start-from} (latest) sends none of the pushes the topic already held,
     * and every one written after it.
     */
    @Test
    void aFirstStartBeginsAtTheEndOfTheTopicByDefault(TestStack base, @TempDir Path dir, @InjectMiniCluster MiniCluster cluster) throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            TestStack stack = base.fresh(Map.of("sidekiq.redis-url", redis.url()));
            assertThat(stack.config().sidekiq().startFromLatest()).as("the default sidekiq.start-from").isTrue();
            produce(stack, pushes(300, 0), List.of()); // history other consumers served
            String topic = stack.config().kafka().pushQueueTopic();
            // a committed transaction's markers are written after the producer returns: wait until a read_committed reader sees it all
            Await.until("the 300 earlier pushes visible to read_committed readers", Duration.ofSeconds(30), Duration.ofMillis(100),
                    () -> stack.readAll(topic).size(), n -> n == 300);
            FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
            JobClient job = start(stack, new SidekiqSink(stack.config().sidekiq()));
            try {
                // its splits are assigned (at the end of the topic) when its checkpoints commit an offset for every partition
                int partitions;
                try (KafkaProducer<byte[], byte[]> p = stack.producer(Map.of())) {
                    partitions = p.partitionsFor(topic).size();
                }
                Await.until("the bridge's committed offsets for all " + partitions + " partitions of " + topic, Duration.ofMinutes(1),
                        Duration.ofMillis(200), () -> committedPartitions(stack, topic), n -> n == partitions);
                List<PushJob> later = pushes(50, 10_000);
                produce(stack, later, List.of());
                Await.until("the 50 pushes written after the start in Redis", Duration.ofMinutes(1), Duration.ofMillis(100), () -> queued(redis), n -> n >= 50);
                long checkpoints = rest.completedCheckpointCount(job.getJobID().toString());
                Await.until("two more checkpoints", Duration.ofMinutes(1), Duration.ofMillis(100),
                        () -> rest.completedCheckpointCount(job.getJobID().toString()), n -> n >= checkpoints + 2);
                assertThat(queued(redis)).as("jobs in Redis: the 50 written after the start, none of the 300 before").isEqualTo(50);
            } finally {
                job.cancel().get();
            }
        }
    }

    /**
     * Records the bridge had not read yet are deleted (retention, while Sidekiq was stopped and the backlog waited in Kafka;
     * here Admin.deleteRecords, as retention does it) before it restores: it goes on from the oldest record left, and every
     * push still in the topic reaches Redis. Before, its consumer reset to the end of the partition (the default
     * sidekiq.start-from latest), and skipped every retained push without a word.
     */
    @Test
    void aRestoreWhoseOffsetRetentionDeletedGoesOnFromTheOldestRecordLeftNotTheEnd(TestStack base, @TempDir Path dir, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            TestStack stack = base.fresh(Map.of("sidekiq.redis-url", redis.url(), "kafka.partitions", "1"));
            String topic = stack.config().kafka().pushQueueTopic();
            JobClient job = start(stack, new SidekiqSink(stack.config().sidekiq()));
            String savepoint;
            try {
                Await.until("the bridge's committed offset for " + topic, Duration.ofMinutes(1), Duration.ofMillis(200),
                        () -> committedPartitions(stack, topic), n -> n == 1);
                produce(stack, pushes(100, 0), List.of());
                Await.until("the first 100 pushes in Redis", Duration.ofMinutes(1), Duration.ofMillis(100), () -> queued(redis), n -> n >= 100);
                savepoint = job.stopWithSavepoint(false, dir.resolve("savepoints").toUri().toString(), SavepointFormatType.CANONICAL)
                        .get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                job.cancel().get();
                throw e;
            }
            List<PushJob> later = pushes(300, 1_000);
            produce(stack, later, List.of()); // offsets 101 to 400 (100 is the first transaction's commit marker), marker 401
            TopicPartition partition = new TopicPartition(topic, 0);
            try (Admin admin = Admin.create(KafkaClients.adminProperties(KafkaClients.clientProperties(stack.config())))) {
                admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(251))).all().get(30, TimeUnit.SECONDS);
            }
            List<PushJob> left = later.subList(150, 300);
            assertThat(stack.readAll(topic)).as("records retention left, from offset 251").hasSize(left.size());
            Configuration restore = new Configuration();
            restore.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint); // its split is at offset 101, now below the log's start
            JobClient restored = start(stack, new SidekiqSink(stack.config().sidekiq()), restore);
            try {
                Await.until("the 150 pushes retention left, after the first 100, in Redis", Duration.ofMinutes(1), Duration.ofMillis(100),
                        () -> queued(redis), n -> n >= 250);
                Set<String> expected = new java.util.HashSet<>();
                pushes(100, 0).forEach(p -> expected.add(p.jobId()));
                left.forEach(p -> expected.add(p.jobId()));
                try (SidekiqWorkers sidekiq = SidekiqWorkers.start(redis, dir.resolve("sidekiq"), 5, "default", "vip")) {
                    List<JsonNode> ran = Await.until("Sidekiq to run the 250 jobs", Duration.ofMinutes(2), Duration.ofMillis(200),
                            sidekiq::processed, r -> r.size() >= expected.size());
                    assertThat(ran.stream().map(j -> j.path("jid").asText()).toList())
                            .as("jobs run: the first 100 and every push retention left, once each").containsExactlyInAnyOrderElementsOf(expected);
                }
            } finally {
                restored.cancel().get();
            }
        }
    }

    /**
     * A queue key that is not a list, and a password Redis refuses, never heal: the bridge stops at once, without restarts,
     * naming the key or the password setting. Before, its queue-length reader took them for a Redis that does not answer,
     * and the bridge waited for ever with every queue's records held in Kafka.
     */
    @Test
    void aQueueKeyOfAnotherTypeOrARefusedPasswordStopsTheBridgeNamingTheFix(TestStack base, @TempDir Path dir) throws Exception {
        try (RedisServer redis = RedisServer.start(dir.resolve("redis"))) {
            assertThat(redis.command("SET queue:default not-a-list")).isEqualTo("+OK");
            TestStack stack = base.fresh(Map.of("sidekiq.redis-url", redis.url()));
            JobClient wrongType = start(stack, new SidekiqSink(stack.config().sidekiq()));
            assertThatThrownBy(() -> wrongType.getJobExecutionResult().get(60, TimeUnit.SECONDS)).as("stopped, not waiting or restarting")
                    .hasStackTraceContaining("SuppressRestartsException")
                    .hasStackTraceContaining("Redis key queue:default holds another type than a Sidekiq queue")
                    .hasStackTraceContaining("WRONGTYPE");
            assertThat(redis.command("DEL queue:default")).isEqualTo(":1");
            TestStack wrongPassword = stack.with(Map.of("sidekiq.redis-password", "not-the-password"));
            JobClient refused = start(wrongPassword, new SidekiqSink(wrongPassword.config().sidekiq()));
            assertThatThrownBy(() -> refused.getJobExecutionResult().get(60, TimeUnit.SECONDS)).as("stopped, not waiting or restarting")
                    .hasStackTraceContaining("SuppressRestartsException")
                    .hasStackTraceContaining("Redis refused the Sidekiq bridge's credentials")
                    .hasStackTraceContaining("sidekiq.redis-password")
                    .satisfies(e -> assertThat(ExceptionUtils.stringifyException(e)).as("the password is never printed").doesNotContain("not-the-password"));
        }
    }

    /** How far Sidekiq is: jobs run, distinct jids, a few expected jids not run yet (and how many), and the queues' length. */
    record Progress(int runs, int distinct, List<String> missing, int missingCount, long queued) {
    }

    private static Progress progress(SidekiqWorkers sidekiq, RedisServer redis, Set<String> expected) throws Exception {
        List<JsonNode> ran = sidekiq.processed();
        Set<String> jids = ran.stream().map(j -> j.path("jid").asText()).collect(Collectors.toSet());
        List<String> missing = expected.stream().filter(j -> !jids.contains(j)).sorted().toList();
        long queued;
        try {
            queued = redis.integer("LLEN queue:default") + redis.integer("LLEN queue:vip");
        } catch (java.io.IOException restarting) {
            queued = -1;
        }
        return new Progress(ran.size(), jids.size(), missing.subList(0, Math.min(5, missing.size())), missing.size(), queued);
    }

    /** The bridge with its real source and dead-letter sink; checkpoints every 500 ms, timing out after 3 s. */
    private static JobClient start(TestStack stack, Sink<SidekiqPush> sink) throws Exception {
        return start(stack, sink, new Configuration());
    }

    /** As {@link #start(TestStack, Sink)}, with {@code conf} (e.g. a savepoint to restore). */
    private static JobClient start(TestStack stack, Sink<SidekiqPush> sink, Configuration conf) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.enableCheckpointing(500);
        env.getCheckpointConfig().setCheckpointTimeout(3_000);
        SidekiqBridgeJob.defineWorkflow(env, stack.config(), SidekiqBridgeJob.source(stack.config(), false), sink, KafkaIo.deadLetterSink(stack.config()));
        return env.executeAsync("sidekiq-bridge-test");
    }

    /** {@code n} pushes over 20 apps (one of them {@link #VIP_APP}), job ids from {@code first}. */
    private static List<PushJob> pushes(int n, int first) {
        List<PushJob> out = new ArrayList<>(n);
        for (int i = first; i < first + n; i++) {
            String app = i % 20 == 0 ? VIP_APP : "app-" + (i % 20);
            out.add(new PushJob(String.format("%024x", i), app, "user-" + i, i % 20 == 0 ? "vip" : "welcome", "Hello \"" + i + "\" ✓", 1_700_000_000_000L + i));
        }
        return out;
    }

    /** Commits {@code pushes} in transactions of 500, and {@code aborted} in one transaction that is aborted. */
    private static void produce(TestStack stack, List<PushJob> pushes, List<PushJob> aborted) throws Exception {
        String topic = stack.config().kafka().pushQueueTopic();
        try (KafkaProducer<byte[], byte[]> p = stack.producer(Map.of("transactional.id", "bridge-test-" + topic))) {
            p.initTransactions();
            for (int i = 0; i < pushes.size(); i += 500) {
                p.beginTransaction();
                for (PushJob j : pushes.subList(i, Math.min(pushes.size(), i + 500))) {
                    p.send(new ProducerRecord<>(topic, j.key().getBytes(StandardCharsets.UTF_8), stack.encode(j)));
                }
                p.commitTransaction();
            }
            if (!aborted.isEmpty()) {
                p.beginTransaction();
                for (PushJob j : aborted) {
                    p.send(new ProducerRecord<>(topic, j.key().getBytes(StandardCharsets.UTF_8), stack.encode(j)));
                }
                p.flush();
                p.abortTransaction();
            }
        }
    }

    /** A record of another schema, registered under a subject of its own, that has every push field but user_id. */
    private static byte[] withoutUserId(TestStack stack) throws Exception {
        String json = """
                {"type":"record","name":"PartialPush","namespace":"test","fields":[
                  {"name":"job_id","type":"string"},{"name":"app_id","type":"string"},{"name":"campaign_id","type":"string"},
                  {"name":"message","type":"string"},{"name":"created_at","type":"long"}]}""";
        int id = StackSetup.register(stack.config().registry().url(), stack.config().kafka().pushQueueTopic() + "-partial-value", json);
        Schema schema = new Schema.Parser().parse(json);
        GenericData.Record r = new GenericData.Record(schema);
        r.put("job_id", "partial-1");
        r.put("app_id", "app-1");
        r.put("campaign_id", "c");
        r.put("message", "m");
        r.put("created_at", 1L);
        return new ConfluentWire(id, schema).encode(r);
    }

    /** Partitions of {@code topic} the bridge's consumer group has committed an offset for. */
    private static int committedPartitions(TestStack stack, String topic) throws Exception {
        try (Admin admin = Admin.create(KafkaClients.adminProperties(KafkaClients.clientProperties(stack.config())))) {
            return (int) admin.listConsumerGroupOffsets(KafkaClients.groupId(stack.config(), SidekiqBridgeJob.NAME)).partitionsToOffsetAndMetadata()
                    .get(10, TimeUnit.SECONDS).keySet().stream().filter(tp -> tp.topic().equals(topic)).count();
        }
    }

    /** Records of {@code topic} after the bridge's committed offsets. */
    private static long lag(TestStack stack, String topic) throws Exception {
        try (Admin admin = Admin.create(KafkaClients.adminProperties(KafkaClients.clientProperties(stack.config())))) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(KafkaClients.groupId(stack.config(), SidekiqBridgeJob.NAME))
                    .partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic).partitions()
                    .forEach(p -> latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
            long lag = 0;
            for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : admin.listOffsets(latest).all().get(10, TimeUnit.SECONDS).entrySet()) {
                OffsetAndMetadata c = committed.get(e.getKey());
                lag += e.getValue().offset() - (c == null ? 0 : c.offset());
            }
            return lag;
        }
    }
}
