package io.sluice.udfs;

import io.sluice.routing.ShardRouter;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class RoutingFunctionsTest {
    @Test
    void agreeWithTheJobsRouterFor10kRandomAppIds() {
        ShardRouter router = ShardRouter.even(1024, 2);
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 10_000; i++) {
            String app = "app-" + Long.toHexString(r.nextLong());
            assertThat(new ShardOf().eval(app)).isEqualTo(router.shardOf(app));
            assertThat(new BucketOf().eval(app)).isEqualTo(router.bucketOf(app));
        }
    }

    @Test
    void withAConfiguredBucketMapAgreeWithTheRouterTheJobsBuildFromIt() {
        String spec = "0-99:2,100-599:0,600-1023:1";
        ShardRouter router = new ShardRouter(ShardRouter.Hash.DEFAULT, ShardRouter.parseBucketMap(spec, 1024, 3));
        ShardOf f = new ShardOf();
        SplittableRandom r = new SplittableRandom(5);
        int[] perShard = new int[3];
        for (int i = 0; i < 10_000; i++) {
            String app = "app-" + Long.toHexString(r.nextLong());
            int shard = f.eval(app, "murmur3-32@" + spec);
            assertThat(shard).isEqualTo(router.shardOf(app));
            perShard[shard]++;
        }
        assertThat(java.util.Arrays.stream(perShard).min().getAsInt()).as("apps on the smallest shard").isGreaterThan(500);
        assertThat(f.eval("app-1", 1024, 2)).as("switching back to even ranges").isEqualTo(ShardRouter.even(1024, 2).shardOf("app-1"));
    }

    @Test
    void nullInNullOut() {
        assertThat(new ShardOf().eval(null)).isNull();
        assertThat(new BucketOf().eval(null, 16)).isNull();
    }
}
