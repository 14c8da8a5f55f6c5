package io.sluice.udfs;

import io.sluice.routing.PushJobIds;
import io.sluice.routing.ShardRouter;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Every function registered with {@code CREATE FUNCTION ... AS '<class>'} in a real Flink SQL environment, as the SQL client does after {@code ADD JAR}. */
class CreateFunctionTest {
    static TableEnvironment sql;

    @BeforeAll
    static void registerFunctions() {
        sql = TableEnvironment.create(EnvironmentSettings.inBatchMode());
        for (String[] f : new String[][] {{"SHARD_OF", "ShardOf"}, {"BUCKET_OF", "BucketOf"}, {"PROP", "Prop"}, {"TIME_LAG_MS", "TimeLagMs"},
                {"PUSH_JOB_ID", "PushJobId"}}) {
            sql.executeSql("CREATE TEMPORARY FUNCTION " + f[0] + " AS 'io.sluice.udfs." + f[1] + "' LANGUAGE JAVA");
        }
    }

    private static Row one(String query) throws Exception {
        List<Row> rows = new ArrayList<>();
        try (CloseableIterator<Row> it = sql.executeSql(query).collect()) {
            it.forEachRemaining(rows::add);
        }
        assertThat(rows).hasSize(1);
        return rows.get(0);
    }

    @Test
    void routingFunctionsAgreeWithTheJobsRouter() throws Exception {
        Row r = one("SELECT SHARD_OF('app-42'), SHARD_OF('app-42', 1024, 4), BUCKET_OF('app-42'), BUCKET_OF('app-42', 16), SHARD_OF('app-42', 'murmur3-32@0-9:1,10-15:0'),"
                + " BUCKET_OF('app-42', 1024, 'crc32'), SHARD_OF('app-42', 'crc32@0-9:1,10-15:0')");
        assertThat(r.getField(0)).isEqualTo(ShardRouter.even(1024, 2).shardOf("app-42"));
        assertThat(r.getField(1)).isEqualTo(ShardRouter.even(1024, 4).shardOf("app-42"));
        assertThat(r.getField(2)).isEqualTo(ShardRouter.bucketOf("app-42", 1024));
        assertThat(r.getField(3)).isEqualTo(ShardRouter.bucketOf("app-42", 16));
        assertThat(r.getField(4)).isEqualTo(new ShardRouter(ShardRouter.Hash.DEFAULT, ShardRouter.parseBucketMap("0-9:1,10-15:0", 16, 2)).shardOf("app-42"));
        assertThat(r.getField(5)).isEqualTo(ShardRouter.bucketOf(ShardRouter.Hash.CRC32, "app-42", 1024));
        assertThat(r.getField(6)).isEqualTo(new ShardRouter(ShardRouter.Hash.CRC32, ShardRouter.parseBucketMap("0-9:1,10-15:0", 16, 2)).shardOf("app-42"));
    }

    @Test
    void propOnAMapAndOnJsonText() throws Exception {
        Row r = one("SELECT PROP(MAP['plan', 'pro', 'level', '20'], 'level'), PROP('{\"plan\":\"pro\"}', 'plan'), PROP(MAP['a', 'b'], 'x')");
        assertThat(r.getField(0)).isEqualTo("20");
        assertThat(r.getField(1)).isEqualTo("pro");
        assertThat(r.getField(2)).isNull();
    }

    @Test
    void pushJobIdAndTimeLag() throws Exception {
        Row r = one("SELECT PUSH_JOB_ID('app-1', 'campaign-1', 'user-7', TIMESTAMP '2023-11-14 22:10:00'), "
                + "PUSH_JOB_ID('app-1', 'campaign-1', 'user-7', CAST(1700000000000 AS BIGINT)), "
                + "TIME_LAG_MS(TIMESTAMP '2000-01-01 00:00:00')");
        assertThat(r.getField(0)).isEqualTo(PushJobIds.of("app-1", "campaign-1", "user-7", 1_700_000_000_000L - 200_000L));
        assertThat(r.getField(1)).isEqualTo(PushJobIds.of("app-1", "campaign-1", "user-7", 1_700_000_000_000L));
        assertThat((Long) r.getField(2)).isGreaterThan(700_000_000_000L); // more than 22 years
    }
}
