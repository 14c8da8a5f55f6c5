package io.sluice.udfs;

import io.sluice.routing.ShardRouter;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code SHARD_OF(app_id [, buckets, shards])} or {@code SHARD_OF(app_id, routing_spec)}: the Postgres
 * shard of an app, by the very {@link ShardRouter} the jobs use: buckets by the default hash
 * ({@code murmur3-32}), then even ranges (default 1024 buckets, 2 shards), or the routing of Sluice's
 * configuration as a spec {@code <hash>@<ranges>} ({@code 'murmur3-32@0-511:0,512-1023:1'}; Sluice's SQL
 * scripts pass it). Null in, null out; a malformed spec fails the query.
 */
public class ShardOf extends ScalarFunction {
    private transient ShardRouter router;
    private transient int routerBuckets;
    private transient int routerShards;
    private transient String routerSpec;

    public Integer eval(String appId) {
        return eval(appId, 1024, 2);
    }

    public Integer eval(String appId, String bucketMap) {
        if (appId == null || bucketMap == null) {
            return null;
        }
        ShardRouter r = router;
        if (r == null || !bucketMap.equals(routerSpec)) {
            r = ShardRouter.ofSpec(bucketMap);
            router = r;
            routerSpec = bucketMap;
            routerBuckets = -1;
        }
        return r.shardOf(appId);
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
            routerSpec = null;
        }
        return r.shardOf(appId);
    }
}
