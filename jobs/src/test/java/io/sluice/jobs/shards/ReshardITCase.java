package io.sluice.jobs.shards;

import io.sluice.core.db.ShardRouting;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.setup.Reshard;
import io.sluice.jobs.subscriptions.SubscriptionRuns;
import io.sluice.routing.ShardRouter;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.util.ExceptionUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Moving a bucket to another shard is a migration ({@link Reshard}), not a config edit: the job refuses the edit alone. */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ReshardITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    private static final String APP = "app-7";

    @Test
    void aBucketMovedBetweenTwoUpdatesEndsAsOneRowWithBothOnTheNewShard(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1"));
        ShardRouter before = stack.config().router();
        int oldShard = before.shardOf(APP);
        int newShard = 1 - oldShard;
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("k1", "a"), List.of(), 1000),
                new SubscriptionUpdate("app-stays", "s", Map.of("x", "1"), List.of(), 1000));
        SubscriptionRuns.runBounded(stack);
        assertThat(rowsOf(stack, oldShard)).contains(APP + "/s {\"k1\": \"a\"}");

        int[] map = ShardRouter.evenRanges(before.buckets(), 2);
        map[before.bucketOf(APP)] = newShard; // one bucket moves
        String spec = new ShardRouter(before.hash(), map).bucketMapSpec();
        TestStack moved = stack.with(Map.of("routing.bucket-map", spec));

        // the edit alone is refused, naming the command
        assertThatThrownBy(() -> SubscriptionRuns.runBounded(moved)).satisfies(e -> assertThat(ExceptionUtils.stringifyException(e))
                .contains("was written with routing generation 1, " + before.spec() + ", but this configuration routes by " + moved.config().router().spec())
                .contains("./sluice reshard").contains("docs/operations.md#re-sharding"));

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Reshard.Result dry = Reshard.run(moved.config(), true, new PrintStream(log, true, StandardCharsets.UTF_8));
        assertThat(dry.rows()).containsExactly(Map.entry("subscriptions shard " + oldShard + " -> " + newShard, 1L));
        assertThat(rowsOf(stack, oldShard)).as("a dry run moves nothing").contains(APP + "/s {\"k1\": \"a\"}");

        Reshard.Result run = Reshard.run(moved.config(), false, new PrintStream(log, true, StandardCharsets.UTF_8));
        assertThat(run.total()).isEqualTo(1);
        assertThat(run.generation()).as("1 the first routing, 2 the move in progress, 3 the new routing").isEqualTo(3);
        assertThat(log.toString(StandardCharsets.UTF_8)).contains("subscriptions shard " + oldShard + " -> " + newShard + ": 1 / 1 rows copied")
                .contains(moved.config().router().spec() + " recorded (shard 0: generation 3, shard 1: generation 3)");
        assertThat(Reshard.run(moved.config(), false, new PrintStream(log, true, StandardCharsets.UTF_8)).total()).as("run again: nothing left").isZero();
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard)) {
                assertThat(ShardRouting.current(c).orElseThrow().spec()).isEqualTo(moved.config().router().spec());
            }
        }

        stack.send(new SubscriptionUpdate(APP, "s", Map.of("k2", "b"), List.of(), 2000));
        SubscriptionRuns.runBounded(moved);
        assertThat(rowsOf(stack, newShard)).contains(APP + "/s {\"k1\": \"a\", \"k2\": \"b\"}");
        assertThat(rowsOf(stack, oldShard)).noneMatch(r -> r.startsWith(APP + "/"));
        // the old routing is now the one refused
        assertThatThrownBy(() -> SubscriptionRuns.runBounded(stack)).satisfies(e -> assertThat(ExceptionUtils.stringifyException(e))
                .contains("routing generation 3"));
    }

    @Test
    void shardsWrittenBeforeRoutingWasRecordedAreRefusedUnlessTheConfigurationSaysCrc32(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1"));
        try (Connection c = stack.shard(0)) { // a row as a build before the routing record left it (crc32, no sluice_routing row)
            c.createStatement().execute("INSERT INTO subscriptions (app_id, subscription_id, properties, updated_at, version)"
                    + " VALUES ('legacy-app', 's', '{}', now(), 3)");
        }
        stack.send(new SubscriptionUpdate(APP, "s", Map.of("k1", "a"), List.of(), 1000));
        assertThatThrownBy(() -> SubscriptionRuns.runBounded(stack)).satisfies(e -> assertThat(ExceptionUtils.stringifyException(e))
                .contains("shard 0 holds rows written before Sluice recorded its routing, which routed by crc32")
                .contains("set routing.hash: crc32").contains("./sluice reshard"));
        TestStack crc32 = stack.with(Map.of("routing.hash", "crc32"));
        SubscriptionRuns.runBounded(crc32);
        assertThat(stack.subscriptionRows()).containsKeys(APP + "/s", "legacy-app/s");
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard)) {
                assertThat(ShardRouting.current(c).orElseThrow().spec()).startsWith("crc32@");
            }
        }
    }

    @Test
    void aDryRunToANewShardThatIsNotMigratedYetReportsWithoutChangingAnything(TestStack stack) throws Exception {
        ShardRouter before = stack.config().router();
        int from = before.shardOf(APP);
        try (Connection c = stack.shard(from)) {
            c.createStatement().execute("INSERT INTO subscriptions (app_id, subscription_id, properties, updated_at, version)"
                    + " VALUES ('" + APP + "', 's', '{}', now(), 1)");
        }
        String db = "reshard_new_shard_" + Long.toHexString(System.nanoTime());
        stack.stack().postgres.createDatabase(db);
        String urls = stack.config().shards().list().get(0).jdbcUrl() + "," + stack.config().shards().list().get(1).jdbcUrl() + ","
                + stack.stack().postgres.jdbcUrl(0, db);
        int[] map = ShardRouter.evenRanges(before.buckets(), 2);
        map[before.bucketOf(APP)] = 2; // the app's bucket goes to the new shard
        TestStack three = stack.with(Map.of("shards.urls", urls, "routing.bucket-map", new ShardRouter(before.hash(), map).bucketMapSpec()));
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Reshard.Result dry = Reshard.run(three.config(), true, new PrintStream(log, true, StandardCharsets.UTF_8));
        assertThat(dry.rows()).containsExactly(Map.entry("subscriptions shard " + from + " -> 2", 1L));
        assertThat(log.toString(StandardCharsets.UTF_8)).contains("shard 2: recorded routing none (schema not migrated yet)");
        assertThat(rowsOf(stack, from)).contains(APP + "/s {}");
    }

    @Test
    void aReshardRefusesWhileAJobIsConnectedToTheShards(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("kafka.partitions", "1"));
        org.apache.flink.core.execution.JobClient job = SubscriptionRuns.start(stack);
        try {
            stack.send(new SubscriptionUpdate(APP, "s", Map.of("k1", "a"), List.of(), 1000));
            stack.awaitSubscriptionRows(Map.of(APP + "/s", Map.of("k1", "a")), 60_000);
            ShardRouter before = stack.config().router();
            int[] map = ShardRouter.evenRanges(before.buckets(), 2);
            map[before.bucketOf(APP)] = 1 - before.shardOf(APP);
            TestStack moved = stack.with(Map.of("routing.bucket-map", new ShardRouter(before.hash(), map).bucketMapSpec()));
            assertThatThrownBy(() -> Reshard.run(moved.config(), false, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)))
                    .hasMessageMatching(".*has sessions of running Sluice jobs \\(\\d+ of sluice-sink-subscriptions\\).*")
                    .hasMessageContaining("stop the jobs with a savepoint first");
            try (Connection c = stack.shard(0)) { // the marker went first: a job starting now would refuse to write
                assertThat(ShardRouting.current(c).orElseThrow().spec()).isEqualTo(ShardRouting.inProgress(moved.config().router().spec()));
            }
        } finally {
            job.cancel().get();
        }
    }

    private static List<String> rowsOf(TestStack stack, int shard) throws Exception {
        List<String> rows = new java.util.ArrayList<>();
        try (Connection c = stack.shard(shard);
             ResultSet rs = c.createStatement().executeQuery("SELECT app_id, subscription_id, properties::text FROM subscriptions ORDER BY 1, 2")) {
            while (rs.next()) {
                rows.add(rs.getString(1) + "/" + rs.getString(2) + " " + rs.getString(3));
            }
        }
        return rows;
    }
}
