package io.sluice.jobs.shards;

import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.subscriptions.SubscriptionDelta;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import io.sluice.testkit.Await;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.streaming.runtime.tasks.TestProcessingTimeService;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** What a cancelled attempt's sink writer leaves behind: {@code close()} with a write in flight on a locked shard. */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ShardedSinkCloseITCase {
    private static final String APP = "app-1";

    @Test
    void closeWaitsBoundedForTheWriteInFlightWhichDoesNotCommitAndNoConnectionOutlivesIt(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("subscriptions.flush-max-rows", "1", "shards.socket-timeout", "3s", "shards.lock-timeout", "1h"));
        int shard = stack.config().router().shardOf(APP);
        ShardedSink.Writer<SubscriptionDelta> writer = new ShardedSink.Writer<>(SubscriptionJob.sink(stack.config()),
                new TestProcessingTimeService(), new DirectMailbox(), new UnregisteredMetricsGroup(), 0, 1, List.of());
        try (Connection locker = stack.shard(shard); Connection observer = stack.shard(shard)) {
            locker.setAutoCommit(false);
            locker.createStatement().execute("LOCK TABLE subscriptions IN SHARE MODE"); // reads go on, writes wait
            // flush-max-rows 1: the write hands its batch to a writer thread and returns
            writer.write(SubscriptionDelta.of(new SubscriptionUpdate(APP, "s", Map.of("k", "v"), List.of(), 1000), 0, 0, 1), null);
            Await.until("the writer thread to wait for the table lock", Duration.ofSeconds(20), () -> sessions(observer, "AND wait_event_type = 'Lock'"),
                    n -> n == 1);

            long t0 = System.nanoTime();
            writer.close();
            long closeMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(closeMs).as("ms close() took, bounded by shards.socket-timeout (3 s) plus slack").isLessThan(10_000);
            String closedAt;
            try (ResultSet rs = observer.createStatement().executeQuery("SELECT now()::text")) {
                rs.next();
                closedAt = rs.getString(1);
            }
            // the server notices the dropped client only when the lock frees: lock_timeout bounds that in production (10 s)
            locker.rollback();
            Await.until("no session of the sink left on shard " + shard, Duration.ofSeconds(20), () -> sessions(observer, ""), n -> n == 0);
            assertThat(stack.subscriptionRows()).as("the write in flight did not commit").isEmpty();
            assertThat(sessions(observer, "AND backend_start > '" + closedAt + "'::timestamptz")).as("connections opened after close").isZero();
        }
    }

    private static int sessions(Connection c, String extra) throws Exception {
        try (ResultSet rs = c.createStatement().executeQuery("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                + " AND application_name = 'sluice-sink-subscriptions' " + extra)) {
            rs.next();
            return rs.getInt(1);
        }
    }
}
