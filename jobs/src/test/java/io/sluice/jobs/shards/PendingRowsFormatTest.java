package io.sluice.jobs.shards;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.aggregation.AggregationJob;
import io.sluice.jobs.aggregation.WindowCount;
import io.sluice.jobs.subscriptions.SubscriptionDelta;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The shard sinks' checkpointed rows (format 2, and format 1 of the builds before): every field of both row types and
 * the writers' assignment survive, and another format is refused by name.
 */
class PendingRowsFormatTest {
    private static final SluiceConfig CONFIG = SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "x:1", "t")
            .put("registry.url", "http://x", "t").put("shards.urls", "jdbc:postgresql://x/a", "t").put("deployment.id", "t", "t"));

    @Test
    void windowCountsRoundTripFieldByField() throws IOException {
        ShardedSink<WindowCount> sink = AggregationJob.sink(CONFIG);
        WindowCount a = new WindowCount("app", "u1", "open", 60_000, 120_000, 3, 4.5, 2, 61_234, 7, 99);
        WindowCount b = new WindowCount("app-ü", "u2", "view", 0, 60_000, 1, 0.0, 1, 1, 0, 0);
        List<WindowCount> back = sink.getWriterStateSerializer().deserialize(2, sink.getWriterStateSerializer().serialize(new ShardedSink.Pending<>(2, List.of(a, b)))).rows();
        assertThat(back).usingRecursiveFieldByFieldElementComparator().containsExactly(a, b);
    }

    @Test
    void subscriptionDeltasRoundTripFieldByField() throws IOException {
        ShardedSink<SubscriptionDelta> sink = SubscriptionJob.sink(CONFIG);
        SubscriptionDelta d = SubscriptionDelta.of(new SubscriptionUpdate("app", "s1", Map.of("k", "v", "long", "x".repeat(70_000)), List.of("gone"), 5_000), 3, 2, 41);
        d.merge(SubscriptionDelta.of(new SubscriptionUpdate("app", "s1", Map.of("k", "w"), List.of(), 6_000), 3, 2, 42));
        SubscriptionDelta back = sink.getWriterStateSerializer().deserialize(2, sink.getWriterStateSerializer().serialize(new ShardedSink.Pending<>(2, List.of(d)))).rows().get(0);
        assertThat(back).usingRecursiveComparison().isEqualTo(d);
        assertThat(back.set).containsEntry("k", "w");
        assertThat(back.version).isEqualTo(42);
        assertThat(back.firstVersion).isEqualTo(41);
    }

    @Test
    void anotherFormatIsRefusedByName() {
        ShardedSink<WindowCount> sink = AggregationJob.sink(CONFIG);
        assertThatThrownBy(() -> sink.getWriterStateSerializer().deserialize(3, new byte[4]))
                .hasMessageContaining("written in format 3").hasMessageContaining("reads formats 1 and 2");
    }

    /** Format 2 keeps how rows reached the writers; format 1 (no assignment) is what every earlier build had: by key. */
    @Test
    void theAssignmentRoundTripsAndFormatOneReadsAsByKey() throws IOException {
        ShardedSink<SubscriptionDelta> sink = SubscriptionJob.sink(CONFIG);
        SubscriptionDelta d = SubscriptionDelta.of(new SubscriptionUpdate("app", "s1", Map.of("k", "v"), List.of(), 5_000), 0, 1, 41);
        var serializer = sink.getWriterStateSerializer();
        ShardedSink.Pending<SubscriptionDelta> back = serializer.deserialize(2, serializer.serialize(
                new ShardedSink.Pending<>(4, ShardedSink.bySourcePartition(3), List.of(d))));
        assertThat(back.parallelism()).isEqualTo(4);
        assertThat(back.assignment()).isEqualTo("by source partition, epoch 3");

        org.apache.flink.core.memory.DataOutputSerializer v1 = new org.apache.flink.core.memory.DataOutputSerializer(256);
        v1.writeInt(2); // format 1: parallelism, row count, rows
        v1.writeInt(1);
        new io.sluice.jobs.subscriptions.SubscriptionTable("subscription-updates").writeRow(v1, d);
        ShardedSink.Pending<SubscriptionDelta> old = serializer.deserialize(1, v1.getCopyOfBuffer());
        assertThat(old.assignment()).isEqualTo(ShardedSink.BY_KEY);
        assertThat(old.parallelism()).isEqualTo(2);
        assertThat(old.rows()).singleElement().usingRecursiveComparison().isEqualTo(d);
    }

    /**
     * Subscription deltas held by 2 writers, restored into 3 while no shard answers (this config's shard is not reachable):
     * the restore cannot learn which rows the shard has committed, so this attempt fails, and only this attempt (a restart
     * asks again); PendingRowsRescaleITCase shows the refusal when a shard answers that a row is not committed.
     */
    @Test
    void subscriptionRowsHeldAtAnotherParallelismFailTheAttemptWhileNoShardCanSayWhichItHas() {
        SubscriptionDelta d = SubscriptionDelta.of(new SubscriptionUpdate("app", "s1", Map.of("k", "v"), List.of(), 5_000), 0, 0, 41);
        assertThatThrownBy(() -> new ShardedSink.Writer<>(SubscriptionJob.sink(CONFIG), new org.apache.flink.streaming.runtime.tasks.TestProcessingTimeService(),
                new DirectMailbox(), new org.apache.flink.metrics.groups.UnregisteredMetricsGroup(), 0, 3, List.of(new ShardedSink.Pending<>(2, ShardedSink.bySourcePartition(0), List.of(d)))))
                .isInstanceOf(IllegalStateException.class)
                .isNotInstanceOf(org.apache.flink.runtime.execution.SuppressRestartsException.class)
                .hasMessageContaining("restores at parallelism 3 rows its shard sink held at parallelism 2")
                .hasMessageContaining("shard 0 (1 rows)")
                .hasMessageContaining("the job restarts and asks again");
    }
}
