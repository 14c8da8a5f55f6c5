package io.sluice.udfs;

import io.sluice.core.routing.ShardRouter;
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
    void nullInNullOut() {
        assertThat(new ShardOf().eval(null)).isNull();
        assertThat(new BucketOf().eval(null, 16)).isNull();
    }
}
