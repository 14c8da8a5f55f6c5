package io.sluice.jobs.shards;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.subscriptions.SubscriptionDelta;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import io.sluice.testkit.LocalMachine;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.apache.flink.streaming.runtime.tasks.TestProcessingTimeService;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Subscription rows a savepoint held at another parallelism, on real shards. A stop with a savepoint can hold a batch
 * whose write was still in flight, which the stopping job then committed (the chaos run met it: 35 rows, and the rescale
 * was refused although every shard answered). Rows the shards have applied are dropped at the restore; one that is not
 * still refuses it; a shard that cannot answer fails only the attempt.
 */
@ExtendWith(SluiceStackExtension.class)
class PendingRowsRescaleITCase {
    @Test
    void rowsTheShardsHaveCommittedSinceDoNotHoldBackARescaleAndOneTheyHaveNotDoes(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of());
        SubscriptionDelta committed = SubscriptionDelta.of(new SubscriptionUpdate("app-a", "s1", Map.of("k", "v"), List.of(), 5_000), 0, 0, 41);
        SubscriptionDelta superseded = SubscriptionDelta.of(new SubscriptionUpdate("app-b", "s2", Map.of("k", "old"), List.of(), 5_000), 0, 1, 7);
        SubscriptionDelta notCommitted = SubscriptionDelta.of(new SubscriptionUpdate("app-c", "s3", Map.of("k", "w"), List.of(), 5_000), 0, 0, 50);
        writer(stack, List.of()).close(); // records the routing, as the first job on the shards does
        row(stack, "app-a", "s1", 0, 0, 41);
        row(stack, "app-b", "s2", 0, 1, 9); // a newer update of the same key, written after it in order
        row(stack, "app-c", "s3", 0, 0, 49); // older than the held row: the held row was never applied

        ShardedSink.Writer<SubscriptionDelta> writer = writer(stack, List.of(committed, superseded));
        writer.close();
        assertThat(stack.subscriptionRows().get("app-a/s1")).containsEntry("k", "v");

        assertThatThrownBy(() -> writer(stack, List.of(committed, superseded, notCommitted)))
                .isInstanceOf(SuppressRestartsException.class)
                .hasStackTraceContaining("at parallelism 3, held 3 rows, 1 of which a shard has not committed")
                .hasStackTraceContaining("Restore at parallelism 3");

        // a shard that cannot answer (down, or not up yet) fails the attempt, not the job: a restart asks again
        SluiceConfig.Shard down = stack.config().shards().list().get(stack.config().router().shardOf("app-a"));
        List<String> urls = new ArrayList<>(stack.config().shards().list().stream().map(SluiceConfig.Shard::jdbcUrl).toList());
        urls.set(down.index(), "jdbc:postgresql://127.0.0.1:" + LocalMachine.freePort() + "/sluice");
        TestStack oneDown = stack.with(Map.of("shards.urls", String.join(",", urls), "shards.connect-timeout", "1s"));
        assertThatThrownBy(() -> writer(oneDown, List.of(committed)))
                .isInstanceOf(IllegalStateException.class)
                .isNotInstanceOf(SuppressRestartsException.class)
                .hasMessageContaining("shard " + down.index() + " (1 rows)")
                .hasMessageContaining("the job restarts and asks again");
        writer(stack, List.of(committed)).close(); // and once it answers, the restore goes through

        // the same parallelism, but the rows reached their writers by key (a savepoint of the build before, or of
        // subscriptions.key-by): a key's newer rows now reach the writer of its partition, so the same check applies
        ShardedSink.Pending<SubscriptionDelta> keyed = new ShardedSink.Pending<>(2, ShardedSink.BY_KEY, List.of(committed, notCommitted));
        assertThatThrownBy(() -> writer(stack, keyed).close())
                .isInstanceOf(SuppressRestartsException.class)
                .hasStackTraceContaining("restores at parallelism 2 with rows assigned by source partition, epoch 0")
                .hasStackTraceContaining("sink, at parallelism 2 with rows assigned by key, held 2 rows, 1 of which a shard has not committed");
        // and the same assignment at the same parallelism restores without asking the shards (a shard down keeps its rows)
        writer(oneDown, new ShardedSink.Pending<>(2, ShardedSink.bySourcePartition(0), List.of(notCommitted))).close();
    }

    /** A writer, subtask 0 of 2, restoring {@code rows} that 3 writers held, with the job's assignment. */
    private static ShardedSink.Writer<SubscriptionDelta> writer(TestStack stack, List<SubscriptionDelta> rows) {
        return writer(stack, new ShardedSink.Pending<>(3, ShardedSink.bySourcePartition(0), rows));
    }

    /** A writer, subtask 0 of 2, restoring {@code held}. */
    private static ShardedSink.Writer<SubscriptionDelta> writer(TestStack stack, ShardedSink.Pending<SubscriptionDelta> held) {
        return new ShardedSink.Writer<>(SubscriptionJob.sink(stack.config()), new TestProcessingTimeService(), new DirectMailbox(),
                new UnregisteredMetricsGroup(), 0, 2, List.of(held));
    }

    private static void row(TestStack stack, String app, String sub, int epoch, int partition, long version) throws Exception {
        try (Connection c = stack.shard(stack.config().router().shardOf(app)); PreparedStatement st = c.prepareStatement(
                "INSERT INTO subscriptions (app_id, subscription_id, properties, updated_at, source_epoch, source_partition, version) "
                        + "VALUES (?, ?, '{\"k\": \"v\"}'::jsonb, now(), ?, ?, ?)")) {
            st.setString(1, app);
            st.setString(2, sub);
            st.setInt(3, epoch);
            st.setInt(4, partition);
            st.setLong(5, version);
            st.executeUpdate();
        }
    }
}
