package io.sluice.routing;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.CRC32;

/**
 * The one rule that maps an app to a Postgres shard, used by the jobs, the SQL UDFs and the docs:
 * {@code bucket = CRC-32(UTF-8 bytes of app_id) mod buckets}, then {@code shard = bucketToShard[bucket]}.
 * CRC-32 is chosen because every language and Postgres can compute it the same way; the bucket ->
 * shard table lives in configuration, so moving buckets re-shards without touching code.
 */
public final class ShardRouter implements Serializable {
    private static final long serialVersionUID = 1L;

    private final int[] bucketToShard;
    private final int shards;

    public ShardRouter(int[] bucketToShard) {
        if (bucketToShard.length == 0) {
            throw new IllegalArgumentException("a bucket map needs at least one bucket");
        }
        this.bucketToShard = bucketToShard.clone();
        this.shards = Arrays.stream(bucketToShard).max().getAsInt() + 1;
    }

    /** Even contiguous ranges: with 1024 buckets and 2 shards, 0-511 go to shard 0 and 512-1023 to shard 1. */
    public static ShardRouter even(int buckets, int shards) {
        return new ShardRouter(evenRanges(buckets, shards));
    }

    public static int bucketOf(String appId, int buckets) {
        CRC32 crc = new CRC32();
        crc.update(appId.getBytes(StandardCharsets.UTF_8));
        return (int) (crc.getValue() % buckets);
    }

    public int bucketOf(String appId) {
        return bucketOf(appId, bucketToShard.length);
    }

    public int shardOf(String appId) {
        return bucketToShard[bucketOf(appId)];
    }

    public int buckets() {
        return bucketToShard.length;
    }

    public int shardCount() {
        return shards;
    }

    public static int[] evenRanges(int buckets, int shards) {
        if (shards < 1 || shards > buckets) {
            throw new IllegalArgumentException("need between 1 and " + buckets + " shards, got " + shards);
        }
        int[] map = new int[buckets];
        for (int b = 0; b < buckets; b++) {
            map[b] = (int) ((long) b * shards / buckets);
        }
        return map;
    }

    /** Parses {@code 0-511:0,512-1023:1}; every bucket must be covered exactly once and every shard used. */
    /**
     * The router of a complete {@code routing.bucket-map} spec on its own ({@link #bucketMapSpec()} reads back
     * as it): the buckets and shards are those it names, and it must cover every bucket exactly once.
     */
    public static ShardRouter ofSpec(String spec) {
        int buckets = 0;
        int shards = 0;
        for (String part : spec.split(",")) {
            String[] rangeAndShard = part.trim().split(":");
            String[] range = rangeAndShard[0].trim().split("-");
            buckets = Math.max(buckets, Integer.parseInt(range[range.length - 1].trim()) + 1);
            shards = Math.max(shards, Integer.parseInt(rangeAndShard[rangeAndShard.length - 1].trim()) + 1);
        }
        return new ShardRouter(parseBucketMap(spec, buckets, shards));
    }

    /** This router's table as a {@code routing.bucket-map} spec ({@code 0-511:0,512-1023:1}); {@link #parseBucketMap} reads it back. */
    public String bucketMapSpec() {
        StringBuilder b = new StringBuilder();
        int from = 0;
        for (int i = 1; i <= bucketToShard.length; i++) {
            if (i == bucketToShard.length || bucketToShard[i] != bucketToShard[from]) {
                b.append(b.length() == 0 ? "" : ",").append(from).append('-').append(i - 1).append(':').append(bucketToShard[from]);
                from = i;
            }
        }
        return b.toString();
    }

    public static int[] parseBucketMap(String spec, int buckets, int shards) {
        int[] map = new int[buckets];
        Arrays.fill(map, -1);
        for (String part : spec.split(",")) {
            String p = part.trim();
            String[] rangeAndShard = p.split(":");
            if (rangeAndShard.length != 2) {
                throw new IllegalArgumentException("'" + p + "' is not 'from-to:shard'");
            }
            String[] range = rangeAndShard[0].trim().split("-");
            int from = Integer.parseInt(range[0].trim());
            int to = range.length > 1 ? Integer.parseInt(range[1].trim()) : from;
            int shard = Integer.parseInt(rangeAndShard[1].trim());
            if (from < 0 || to >= buckets || from > to) {
                throw new IllegalArgumentException("range " + from + "-" + to + " is outside 0-" + (buckets - 1));
            }
            if (shard < 0 || shard >= shards) {
                throw new IllegalArgumentException("shard " + shard + " does not exist (have " + shards + ")");
            }
            for (int b = from; b <= to; b++) {
                if (map[b] != -1) {
                    throw new IllegalArgumentException("bucket " + b + " is mapped twice");
                }
                map[b] = shard;
            }
        }
        for (int b = 0; b < buckets; b++) {
            if (map[b] == -1) {
                throw new IllegalArgumentException("bucket " + b + " is not mapped");
            }
        }
        return map;
    }
}
