package io.sluice.udfs;

import io.sluice.routing.ShardRouter;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code BUCKET_OF(app_id [, buckets [, hash]])}: the routing bucket of an app, by the jobs' {@link ShardRouter}
 * (default 1024 buckets, hash {@code murmur3-32}; {@code 'crc32'} for shards written before routing was recorded).
 */
public class BucketOf extends ScalarFunction {
    public Integer eval(String appId) {
        return eval(appId, 1024);
    }

    public Integer eval(String appId, Integer buckets) {
        if (appId == null || buckets == null) {
            return null;
        }
        return ShardRouter.bucketOf(appId, buckets);
    }

    public Integer eval(String appId, Integer buckets, String hash) {
        if (appId == null || buckets == null || hash == null) {
            return null;
        }
        return ShardRouter.bucketOf(ShardRouter.Hash.of(hash), appId, buckets);
    }
}
