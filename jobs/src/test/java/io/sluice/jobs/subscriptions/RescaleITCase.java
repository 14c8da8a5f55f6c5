package io.sluice.jobs.subscriptions;

import io.sluice.core.config.ConfigException;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.testkit.ReadSampler;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;
import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.executiongraph.AccessExecutionJobVertex;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static io.sluice.testkit.Await.until;
import static io.sluice.testkit.TestStack.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Rescaling through savepoints, and the max parallelism that bounds it ({@code deployment.max-parallelism}): the
 * number of key groups is fixed for the life of the state, so every launcher must build the jobs with the same one.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class RescaleITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    /**
     * 2 → 3 → 2 subtasks under a live generator (hot key, malformed records): each step stops with a savepoint and
     * resumes from it at the new parallelism. The rows equal the oracle, a sampling reader never sees one move back,
     * and every malformed record is a dead letter (counted by distinct source offset: a replay may repeat one).
     */
    @Test
    void rescaledTwoToThreeToTwoFromSavepointsTheRowsEqualTheOracle(TestStack base, @InjectMiniCluster MiniCluster cluster,
                                                                    @TempDir Path savepoints) throws Exception {
        TestStack two = base.fresh(Map.of("kafka.partitions", "6", "generator.count", "60000", "generator.update-fraction", "1",
                "generator.apps", "40", "generator.subscriptions-per-app", "1000", "generator.hot-key", "true",
                "generator.malformed-fraction", "0.01", "subscriptions.parallelism", "2", "subscriptions.flush-interval", "200ms"));
        TestStack three = two.with(Map.of("subscriptions.parallelism", "3"));
        List<String> steps = new ArrayList<>();
        try (LoadGenerator g = new LoadGenerator(two.config(), two.generator(), two.schemaIds(), 6_000, 1_700_000_000_000L, false).start();
             ReadSampler sampler = new ReadSampler(two, List.of(RecordSequence.appId(1), RecordSequence.appId(7)),
                     "SELECT subscription_id, version, properties::text FROM subscriptions WHERE app_id = ?")) {
            JobClient job = SubscriptionRuns.start(two, new Configuration());
            try {
                JobID first = job.getJobID();
                assertThat(until("the job's vertices", Duration.ofSeconds(30), () -> maxParallelisms(cluster, first), m -> !m.isEmpty()))
                        .as("every vertex's max parallelism").containsOnly(SluiceConfig.Deployment.DEFAULT_MAX_PARALLELISM);
                for (TestStack next : List.of(three, two)) {
                    long at = g.acked() + 15_000;
                    until(at + " records sent", Duration.ofMinutes(2), () -> g.acked() >= at || !g.isRunning());
                    String savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL)
                            .get(60, TimeUnit.SECONDS);
                    steps.add("stopped with a savepoint at " + g.acked() + " records sent, resumed at parallelism "
                            + next.config().subscriptions().parallelism());
                    job = SubscriptionRuns.start(next, fromSavepoint(savepoint));
                    TestFlink.awaitRestored(cluster, job.getJobID(), savepoint, next.config().subscriptions().parallelism());
                }
                Oracle oracle = g.awaitDone().oracle();
                Map<String, Map<String, String>> expected = TestStack.expectedRows(oracle);
                TestStack.assertSubscriptionRows(two.awaitSubscriptionRows(expected, 120_000), expected, steps.toString());
                sampler.assertNoRowMovedBackwards();
                String topic = two.config().kafka().subscriptionUpdatesTopic();
                Set<String> deadOffsets = new HashSet<>();
                for (ConsumerRecord<byte[], byte[]> d : two.readAll(two.config().kafka().deadLettersTopic())) {
                    deadOffsets.add(header(d, DeadLetterSerializer.PARTITION) + "@" + header(d, DeadLetterSerializer.OFFSET));
                }
                assertThat(oracle.malformed(topic)).as("malformed records sent").isPositive();
                assertThat(deadOffsets).as("distinct dead-letter source offsets, " + steps).hasSize((int) oracle.malformed(topic));
                System.out.println("rescaled 2 -> 3 -> 2: " + steps + "; " + expected.size() + " rows, " + deadOffsets.size() + " dead letters");
            } finally {
                TestFlink.cancelIfRunning(job);
            }
        }
    }

    /**
     * The upgrade from builds without {@code deployment.max-parallelism}: their savepoints carry Flink's default, 128.
     * Submitted with the new default the job is refused where it is built, naming the key, both values and the fix;
     * with {@code deployment.max-parallelism 128} it restores and goes on.
     */
    @Test
    void aSavepointWithAnotherMaxParallelismIsRefusedNamingTheKeyAndRestoresWithIt(TestStack base, @InjectMiniCluster MiniCluster cluster,
                                                                                 @TempDir Path savepoints) throws Exception {
        TestStack old = base.fresh(Map.of("kafka.partitions", "2", "subscriptions.parallelism", "2", "deployment.max-parallelism", "128"));
        old.send(levelOneDevices());
        JobClient job = SubscriptionRuns.start(old, new Configuration());
        String savepoint;
        try {
            until("200 subscription rows", Duration.ofMinutes(1), old::subscriptionRows, rows -> rows.size() == 200);
            savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        } finally {
            TestFlink.cancelIfRunning(job);
        }

        TestStack upgraded = old.with(Map.of("deployment.max-parallelism", String.valueOf(SluiceConfig.Deployment.DEFAULT_MAX_PARALLELISM)));
        assertThatThrownBy(() -> SubscriptionRuns.start(upgraded, fromSavepoint(savepoint)))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("was taken with max parallelism 128,")
                .hasMessageContaining("deployment.max-parallelism 720")
                .hasMessageContaining("resume with --deployment.max-parallelism 128");

        old.send(new SubscriptionUpdate("app-1", "device-1", Map.of("level", "2"), List.of(), 5_000));
        JobClient resumed = SubscriptionRuns.start(old, fromSavepoint(savepoint));
        try {
            TestFlink.awaitRestored(cluster, resumed.getJobID(), savepoint, 2);
            Map<String, Map<String, String>> rows = until("device-1 at level 2 after the restore", Duration.ofMinutes(1),
                    old::subscriptionRows, r -> Map.of("level", "2").equals(r.get("app-1/device-1")));
            assertThat(rows).hasSize(200);
        } finally {
            TestFlink.cancelIfRunning(resumed);
        }
    }

    /**
     * Savepoints across the job's topologies. Builds up to 945586d kept each pending delta in keyed state
     * ({@code pending-delta}, operator {@code coalesce-per-subscription}, behind a {@code keyBy}); since then the
     * coalescers hold no state, and the default topology has no shuffle. A savepoint of that shape restores into the
     * default topology, and one of the default topology into {@code subscriptions.key-by}, each going on from where the
     * one before stopped.
     */
    @Test
    void aSavepointOfThePreviousKeyedStateTopologyRestoresIntoBothTopologies(TestStack base, @InjectMiniCluster MiniCluster cluster,
                                                                           @TempDir Path savepoints) throws Exception {
        TestStack previous = base.fresh(Map.of("kafka.partitions", "2", "subscriptions.parallelism", "2"));
        previous.send(levelOneDevices());
        JobClient job = startPreviousTopology(previous);
        String savepoint;
        try {
            until("200 subscription rows written by the previous topology", Duration.ofMinutes(1), previous::subscriptionRows, rows -> rows.size() == 200);
            savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        } finally {
            TestFlink.cancelIfRunning(job);
        }

        // into the default topology (no shuffle, no keyed state)
        assertThat(previous.config().subscriptions().keyBy()).as("the default topology").isFalse();
        previous.send(new SubscriptionUpdate("app-1", "device-1", Map.of("level", "2"), List.of(), 5_000));
        JobClient resumed = SubscriptionRuns.start(previous, fromSavepoint(savepoint));
        String second;
        try {
            TestFlink.awaitRestored(cluster, resumed.getJobID(), savepoint, 2);
            Map<String, Map<String, String>> rows = until("device-1 at level 2 after the restore into the default topology", Duration.ofMinutes(1),
                    previous::subscriptionRows, r -> Map.of("level", "2").equals(r.get("app-1/device-1")));
            assertThat(rows).hasSize(200);
            assertThat(rows.get("app-2/device-2")).as("a row the restored job did not touch").isEqualTo(Map.of("level", "1"));
            second = resumed.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        } finally {
            TestFlink.cancelIfRunning(resumed);
        }

        // and from there into subscriptions.key-by
        TestStack keyed = previous.with(Map.of("subscriptions.key-by", "true"));
        keyed.send(new SubscriptionUpdate("app-2", "device-2", Map.of("level", "3"), List.of(), 6_000));
        JobClient again = SubscriptionRuns.start(keyed, fromSavepoint(second));
        try {
            TestFlink.awaitRestored(cluster, again.getJobID(), second, 2);
            Map<String, Map<String, String>> rows = until("device-2 at level 3 after the restore into subscriptions.key-by", Duration.ofMinutes(1),
                    keyed::subscriptionRows, r -> Map.of("level", "3").equals(r.get("app-2/device-2")));
            assertThat(rows).hasSize(200);
            assertThat(rows.get("app-1/device-1")).isEqualTo(Map.of("level", "2"));
        } finally {
            TestFlink.cancelIfRunning(again);
        }
    }

    /**
     * The graph of builds up to 945586d, as far as state goes: the same uids, a {@code keyBy}, and under
     * {@code coalesce-per-subscription} a keyed {@code ValueState<SubscriptionDelta>} named {@code pending-delta} (emptied
     * before every barrier, as that coalescer did).
     */
    private static JobClient startPreviousTopology(TestStack stack) throws Exception {
        SluiceConfig config = stack.config();
        SluiceConfig.Subscriptions s = config.subscriptions();
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(new Configuration());
        env.enableCheckpointing(500);
        io.sluice.jobs.SluiceJob.configure(env, config);
        env.setParallelism(s.parallelism());
        String topic = config.kafka().subscriptionUpdatesTopic();
        SingleOutputStreamOperator<SubscriptionDelta> valid = env
                .fromSource(SubscriptionJob.source(config, false), WatermarkStrategy.noWatermarks(), "subscription-updates")
                .uid("subscription-updates-source")
                .process(new ValidateUpdates(topic, s, new SourceGuard(config, SubscriptionJob.NAME, topic, s.sourceEpoch()),
                        config.kafka().partitionDiscoveryMs(), null))
                .uid("validate-updates").name("validate updates");
        valid.transform("pre-coalesce before shuffle", TypeInformation.of(SubscriptionDelta.class), new Coalescer(s.flushIntervalMs(), 1000, false))
                .uid("pre-coalesce").name("pre-coalesce before shuffle")
                .keyBy(SubscriptionDelta::key)
                .transform("coalesce per subscription", TypeInformation.of(SubscriptionDelta.class), new KeyedStateCoalescer())
                .uid("coalesce-per-subscription")
                .sinkTo(SubscriptionJob.sink(config)).uid("upsert-into-shards").name("upsert into shards");
        io.sluice.jobs.common.CountDeadLetters.sinkTo(valid.getSideOutput(io.sluice.jobs.common.DeadLetter.SIDE_OUTPUT), KafkaIo.deadLetterSink(config),
                "subscription");
        return env.executeAsync("subscriptions-previous-topology");
    }

    /** Passes each delta on through keyed state, as the previous coalescer held it between flushes. */
    private static final class KeyedStateCoalescer extends AbstractStreamOperator<SubscriptionDelta>
            implements OneInputStreamOperator<SubscriptionDelta, SubscriptionDelta> {
        private transient ValueState<SubscriptionDelta> pending;

        @Override
        public void open() throws Exception {
            super.open();
            pending = getRuntimeContext().getState(new ValueStateDescriptor<>("pending-delta", SubscriptionDelta.class));
        }

        @Override
        public void processElement(StreamRecord<SubscriptionDelta> element) throws Exception {
            pending.update(element.getValue());
            output.collect(new StreamRecord<>(pending.value()));
            pending.clear();
        }
    }

    /** 200 subscriptions (device-0..199) of 9 apps, each set to level 1. */
    private static SubscriptionUpdate[] levelOneDevices() {
        List<SubscriptionUpdate> first = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            first.add(new SubscriptionUpdate("app-" + (i % 9), "device-" + i, Map.of("level", "1"), List.of(), 1_000 + i));
        }
        return first.toArray(new SubscriptionUpdate[0]);
    }

    private static Configuration fromSavepoint(String path) {
        Configuration conf = new Configuration();
        conf.set(StateRecoveryOptions.SAVEPOINT_PATH, path);
        return conf;
    }

    private static Set<Integer> maxParallelisms(MiniCluster cluster, JobID job) throws Exception {
        Map<String, Integer> byVertex = new TreeMap<>();
        for (AccessExecutionJobVertex v : cluster.getExecutionGraph(job).get(30, TimeUnit.SECONDS).getAllVertices().values()) {
            byVertex.put(v.getName(), v.getMaxParallelism());
        }
        System.out.println("max parallelism per vertex: " + byVertex);
        return new HashSet<>(byVertex.values());
    }
}
