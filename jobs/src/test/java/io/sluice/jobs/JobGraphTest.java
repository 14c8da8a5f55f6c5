package io.sluice.jobs;

import io.sluice.core.config.ConfigException;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Every Sluice job builds its graph with auto-generated uids off ({@link SluiceJob#configure}), so an operator
 * added without {@code .uid()} fails here, in the fast tier, instead of at the first savepoint upgrade.
 */
class JobGraphTest {
    private static SluiceConfig config() {
        return SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "localhost:1", "test").put("deployment.id", "graph-test", "test")
                .put("registry.url", "http://localhost:1", "test")
                .put("shards.urls", "jdbc:postgresql://localhost:1/a,jdbc:postgresql://localhost:1/b", "test"));
    }

    @Test
    void everyOperatorOfEveryJobHasAUidAndAName() throws Exception {
        for (SluiceJob job : java.util.stream.Stream.concat(SluiceJobs.all().stream(), SluiceJobs.optional().stream()).toList()) {
            StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
            job.build(env, config());
            StreamGraph graph = env.getStreamGraph(); // throws for an operator without a uid
            assertThat(graph.getStreamNodes()).as(job.name() + " operators").isNotEmpty();
            for (StreamNode node : graph.getStreamNodes()) {
                assertThat(node.getOperatorName()).as("name of an operator of " + job.name()).isNotBlank();
            }
        }
    }

    /** The start-backlog probe runs only where an idleness rule reads its answer. */
    @Test
    void theEventSourceWatchesItsBacklogOnlyWhenPartitionsMayGoIdle() {
        assertThat(io.sluice.jobs.aggregation.AggregationJob.eventSource(config(), false))
                .as("aggregation.idleness 10s (the default)").isInstanceOf(io.sluice.jobs.common.BacklogAwareSource.class);
        SluiceConfig never = SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "localhost:1", "test").put("deployment.id", "graph-test", "test")
                .put("registry.url", "http://localhost:1", "test").put("shards.urls", "jdbc:postgresql://localhost:1/a", "test")
                .put("aggregation.idleness", "0", "test"));
        assertThat(io.sluice.jobs.aggregation.AggregationJob.eventSource(never, false))
                .as("aggregation.idleness 0").isInstanceOf(org.apache.flink.connector.kafka.source.KafkaSource.class);
    }

    @Test
    void aJobWithoutADeploymentIdOnTheSharedDefaultsIsRefusedAndOneWithItIsNamedAfterIt() throws Exception {
        RawConfig shared = RawConfig.empty().put("kafka.bootstrap", "localhost:1", "test").put("registry.url", "http://localhost:1", "test")
                .put("shards.urls", "jdbc:postgresql://localhost:1/a", "test");
        for (SluiceJob job : java.util.stream.Stream.concat(SluiceJobs.all().stream(), SluiceJobs.optional().stream()).toList()) {
            assertThatThrownBy(() -> job.build(StreamExecutionEnvironment.getExecutionEnvironment(), SluiceConfig.from(shared)))
                    .as(job.name()).isInstanceOf(ConfigException.class).hasMessageStartingWith("deployment.id is not set").hasMessageContaining("prod-eu");
        }
        SluiceConfig prod = config();
        assertThat(prod.kafka().groupPrefix()).isEqualTo("sluice-graph-test");
        assertThat(prod.push().transactionalIdPrefix()).isEqualTo("sluice-graph-test-push");
        SluiceConfig kept = SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "localhost:1", "test").put("registry.url", "http://localhost:1", "test")
                .put("shards.urls", "jdbc:postgresql://localhost:1/a", "test").put("kafka.group-prefix", "sluice", "test")
                .put("push.transactional-id-prefix", "sluice-push", "test"));
        assertThat(kept.deployment().problem()).as("an existing deployment keeping its names explicitly").isEmpty();
        assertThatThrownBy(() -> SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "localhost:1", "test")
                .put("registry.url", "http://localhost:1", "test").put("shards.urls", "jdbc:postgresql://localhost:1/a", "test")
                .put("deployment.id", "prod eu", "test"))).isInstanceOf(ConfigException.class).hasMessageContaining("'prod eu'");
    }

    /**
     * The subscription job shuffles nothing by default: every edge into the coalescer and the sink is forward, and the
     * sink is a vertex of its own. With {@code subscriptions.key-by} the coalescer is behind a hash partitioner.
     */
    @Test
    void theSubscriptionJobShufflesOnlyWithKeyBy() throws Exception {
        for (boolean keyBy : new boolean[] {false, true}) {
            StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
            SluiceConfig config = SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "localhost:1", "test").put("deployment.id", "graph-test", "test")
                    .put("registry.url", "http://localhost:1", "test").put("shards.urls", "jdbc:postgresql://localhost:1/a", "test")
                    .put("subscriptions.key-by", String.valueOf(keyBy), "test"));
            new io.sluice.jobs.subscriptions.SubscriptionJob().build(env, config);
            StreamGraph graph = env.getStreamGraph();
            java.util.Map<String, String> into = new java.util.HashMap<>();
            for (StreamNode node : graph.getStreamNodes()) {
                for (var edge : node.getInEdges()) {
                    into.merge(node.getOperatorName(), edge.getPartitioner().toString(), (a, b) -> a + "," + b);
                }
            }
            assertThat(into.get("coalesce per subscription")).as("into the coalescer, key-by " + keyBy).isEqualTo(keyBy ? "HASH" : "FORWARD");
            assertThat(into.entrySet().stream().filter(e -> e.getKey().startsWith("upsert into shards")).map(java.util.Map.Entry::getValue).toList())
                    .as("into the sink, key-by " + keyBy).containsExactly("FORWARD");
            assertThat(into.values().stream().filter(v -> v.contains("HASH")).count()).as("hash edges, key-by " + keyBy).isEqualTo(keyBy ? 1 : 0);
        }
    }

    /**
     * The push queue's committer runs chained to its writer, in one task: the connector commits live transactions with
     * the writer's own producer, and OrphanAbortingCommitter tells restored commits from live ones by it and knows its
     * restored commits are over when its task's writer is created.
     */
    @Test
    void thePushQueuesCommitterIsChainedToItsWriter() throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        new io.sluice.jobs.aggregation.AggregationJob().build(env, config());
        java.util.List<String> vertices = new java.util.ArrayList<>();
        env.getStreamGraph().getJobGraph().getVertices().forEach(v -> vertices.add(v.getName()));
        assertThat(vertices).as("job vertices").anySatisfy(name -> assertThat(name)
                .contains("push queue (exactly once): Writer").contains("push queue (exactly once): Committer"));
    }

    @Test
    void anOperatorWithoutAUidIsRefused() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        SluiceJob.configure(env);
        env.fromData(1, 2, 3).uid("numbers").map(new Identity()).sinkTo(new DiscardingSink<>()).uid("discard");
        assertThatThrownBy(env::getStreamGraph).hasMessageContaining("no UID");
    }

    /** In-flight records are never in a checkpoint, so their network formats may change between builds. */
    @Test
    void unalignedCheckpointsAreOffEvenWhenTheClusterTurnsThemOn() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(1000); // Flink reports unaligned checkpoints only with checkpoints on
        env.configure(new org.apache.flink.configuration.Configuration().set(org.apache.flink.configuration.CheckpointingOptions.ENABLE_UNALIGNED, true));
        assertThat(env.getCheckpointConfig().isUnalignedCheckpointsEnabled()).as("before Sluice's settings").isTrue();
        SluiceJob.configure(env);
        assertThat(env.getCheckpointConfig().isUnalignedCheckpointsEnabled()).isFalse();
    }

    private static final class Identity implements MapFunction<Integer, Integer> {
        @Override
        public Integer map(Integer value) {
            return value;
        }
    }
}
