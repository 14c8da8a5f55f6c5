package io.sluice.udfs;

import io.sluice.core.routing.ShardRouter;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code SHARD_OF(app_id [, buckets, shards])}: the Postgres shard of an app, by the very
 * {@link ShardRouter} the jobs use (CRC-32 buckets, even ranges; default 1024 buckets, 2 shards).
 * Null in, null out.
 */
public class ShardOf extends ScalarFunction {
    private transient ShardRouter router;
    private transient int routerBuckets;
    private transient int routerShards;

    public Integer eval(String appId) {
        return eval(appId, 1024, 2);
    }

    public Integer eval(String appId, Integer buckets, Integer shards) {
        if (appId == null || buckets == null || shards == null) {
            return null;
        }
        ShardRouter r = router;
        if (r == null || routerBuckets != buckets || routerShards != shards) {
            r = ShardRouter.even(buckets, shards); // built once per (buckets, shards), not once per row
            router = r;
            routerBuckets = buckets;
            routerShards = shards;
        }
        return r.shardOf(appId);
    }
}
