package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.shards.ShardTable;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.ResultSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** The guarded statement of {@link SubscriptionTable} against a real shard, with two writers at once. */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class SubscriptionTableITCase {
    private static final SubscriptionTable TABLE = new SubscriptionTable("subscription-updates");

    private static SubscriptionDelta delta(String value, int partition, long offset) {
        return SubscriptionDelta.of(new SubscriptionUpdate("app", "s", Map.of("k", value), List.of(), 1000 + offset), 0, partition, offset);
    }

    @Test
    void aNewerInsertWaitingOnAnOlderConcurrentOneIsAppliedAfterItNotDropped(TestStack stack) throws Exception {
        try (Connection stale = stack.shard(0); Connection fresh = stack.shard(0)) {
            stale.setAutoCommit(false);
            fresh.setAutoCommit(false);
            // a cancelled attempt, not gone yet, inserts the row at offset 5 and has not committed
            assertThat(TABLE.write(stale, List.of(delta("from-offset-5", 0, 5))).again()).isEmpty();
            // its successor writes offset 10 of the same subscription: its insert waits for the first one's lock
            CompletableFuture<ShardTable.Written<SubscriptionDelta>> newer = CompletableFuture.supplyAsync(() -> {
                try {
                    return TABLE.write(fresh, List.of(delta("from-offset-10", 0, 10)));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            try (Connection observer = stack.shard(0)) {
                io.sluice.testkit.Await.until("the second writer to wait for the first one's row lock", java.time.Duration.ofSeconds(20), () -> {
                    try (ResultSet rs = observer.createStatement().executeQuery(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")) {
                        rs.next();
                        return rs.getInt(1);
                    }
                }, waiting -> waiting == 1);
            }
            stale.commit();
            ShardTable.Written<SubscriptionDelta> w = newer.get(30, TimeUnit.SECONDS);
            assertThat(w.again()).as("met a row inserted meanwhile: to be written again").hasSize(1);
            assertThat(TABLE.write(fresh, w.again()).again()).isEmpty();
            fresh.commit();
        }
        try (Connection c = stack.shard(0); ResultSet rs = c.createStatement().executeQuery(
                "SELECT properties->>'k', source_partition, version FROM subscriptions WHERE app_id = 'app' AND subscription_id = 's'")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getString(1) + " p" + rs.getInt(2) + " v" + rs.getLong(3)).isEqualTo("from-offset-10 p0 v10");
        }
    }

    @Test
    void replaysAreNoOpsASecondPartitionIsRefusedNamingBothAndANewerEpochWins(TestStack stack) throws Exception {
        try (Connection c = stack.shard(1)) {
            c.setAutoCommit(true);
            assertThat(TABLE.write(c, List.of(delta("s", "a", 0, 2, 7))).noOps()).isZero();
            ShardTable.Written<SubscriptionDelta> replay = TABLE.write(c, List.of(delta("s", "a", 0, 2, 7), delta("s2", "b", 0, 3, 1)));
            assertThat(replay.noOps()).as("the replay of s; s2 is new").isEqualTo(1);
            assertThat(replay.refused()).isEmpty();
            assertThat(TABLE.write(c, List.of(delta("s", "c", 0, 3, 2))).refused()).singleElement().satisfies(d -> {
                assertThat(d.stage()).isEqualTo("validate");
                assertThat(d.partition()).isEqualTo(3);
                assertThat(d.reason()).contains("was written from partition 2 (offset 7) and this update came from partition 3, offsets 2..2");
            });
            // a newer source epoch wins whatever its partition and offset; an older one arriving late is refused
            assertThat(TABLE.write(c, List.of(delta("s2", "epoch-1", 1, 0, 0))).refused()).isEmpty();
            assertThat(TABLE.write(c, List.of(delta("s2", "epoch-0", 0, 3, 99))).refused()).singleElement()
                    .satisfies(d -> assertThat(d.reason()).startsWith("the row is at source epoch 1 (partition 0, offset 0)"));
            try (ResultSet rs = c.createStatement().executeQuery("SELECT subscription_id, properties->>'k' FROM subscriptions WHERE app_id = 'app' ORDER BY 1")) {
                rs.next();
                assertThat(rs.getString(1) + "=" + rs.getString(2)).isEqualTo("s=a");
                rs.next();
                assertThat(rs.getString(1) + "=" + rs.getString(2)).isEqualTo("s2=epoch-1");
            }
        }
    }

    private static SubscriptionDelta delta(String subscription, String value, int epoch, int partition, long offset) {
        return SubscriptionDelta.of(new SubscriptionUpdate("app", subscription, Map.of("k", value), List.of(), 1000 + offset), epoch, partition, offset);
    }
}
