package io.sluice.routing;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The one rule that maps an app to a Postgres shard, used by the jobs, the SQL UDFs and the docs:
 * {@code bucket = hash(UTF-8 bytes of app_id) mod buckets} (unsigned), then {@code shard = bucketToShard[bucket]}.
 * The hash is named ({@link Hash}): {@code murmur3-32} (MurmurHash3 x86 32-bit, seed 0, the default) spreads
 * short sequential ids such as {@code app-0}..{@code app-49} evenly; {@code crc32} is what Sluice used before
 * routing was recorded, and clusters such ids. Both exist in every language. The bucket -> shard table lives in
 * configuration and is recorded on the shards with the hash; changing either is a re-shard
 * ({@code ./sluice reshard}), not a config edit.
 *
 * <p>A routing spec reads {@code <hash>@<ranges>}, e.g. {@code murmur3-32@0-511:0,512-1023:1}. The hash is
 * required: bare ranges meant {@code crc32} before the hash had a name, so guessing either way would
 * route some saved query to the wrong shard without an error.
 */
public final class ShardRouter implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The bucket hashes a routing can name. */
    public enum Hash {
        MURMUR3_32("murmur3-32"),
        CRC32("crc32");

        public static final Hash DEFAULT = MURMUR3_32;
        private final String id;

        Hash(String id) {
            this.id = id;
        }

        /** The name recorded on the shards and written in specs. */
        public String id() {
            return id;
        }

        public static Hash of(String id) {
            for (Hash h : values()) {
                if (h.id.equals(id)) {
                    return h;
                }
            }
            throw new IllegalArgumentException("unknown bucket hash '" + id + "'; known: murmur3-32, crc32");
        }

        /** The unsigned 32-bit hash of {@code bytes}. */
        public long hash(byte[] bytes) {
            if (this == CRC32) {
                java.util.zip.CRC32 crc = new java.util.zip.CRC32();
                crc.update(bytes);
                return crc.getValue();
            }
            return murmur3x86x32(bytes) & 0xffff_ffffL;
        }
    }

    private final Hash hash;
    private final int[] bucketToShard;
    private final int shards;

    public ShardRouter(Hash hash, int[] bucketToShard) {
        if (bucketToShard.length == 0) {
            throw new IllegalArgumentException("a bucket map needs at least one bucket");
        }
        this.hash = hash;
        this.bucketToShard = bucketToShard.clone();
        this.shards = Arrays.stream(bucketToShard).max().getAsInt() + 1;
    }

    /** Even contiguous ranges with the default hash: with 1024 buckets and 2 shards, 0-511 go to shard 0 and 512-1023 to shard 1. */
    public static ShardRouter even(int buckets, int shards) {
        return new ShardRouter(Hash.DEFAULT, evenRanges(buckets, shards));
    }

    /** The bucket of an app by the default hash. */
    public static int bucketOf(String appId, int buckets) {
        return bucketOf(Hash.DEFAULT, appId, buckets);
    }

    public static int bucketOf(Hash hash, String appId, int buckets) {
        return (int) (hash.hash(appId.getBytes(StandardCharsets.UTF_8)) % buckets);
    }

    public int bucketOf(String appId) {
        return bucketOf(hash, appId, bucketToShard.length);
    }

    public Hash hash() {
        return hash;
    }

    /** MurmurHash3, x86 32-bit variant, seed 0 (as Guava's {@code murmur3_32_fixed}, Python's {@code mmh3.hash}, ...). */
    static int murmur3x86x32(byte[] data) {
        final int c1 = 0xcc9e2d51;
        final int c2 = 0x1b873593;
        int h = 0;
        int blocks = data.length / 4;
        for (int i = 0; i < blocks; i++) {
            int k = (data[4 * i] & 0xff) | (data[4 * i + 1] & 0xff) << 8 | (data[4 * i + 2] & 0xff) << 16 | (data[4 * i + 3] & 0xff) << 24;
            k *= c1;
            k = Integer.rotateLeft(k, 15);
            k *= c2;
            h ^= k;
            h = Integer.rotateLeft(h, 13);
            h = h * 5 + 0xe6546b64;
        }
        int k = 0;
        int tail = blocks * 4;
        switch (data.length & 3) {
            case 3:
                k ^= (data[tail + 2] & 0xff) << 16;
                // fall through
            case 2:
                k ^= (data[tail + 1] & 0xff) << 8;
                // fall through
            case 1:
                k ^= data[tail] & 0xff;
                k *= c1;
                k = Integer.rotateLeft(k, 15);
                k *= c2;
                h ^= k;
                break;
            default:
                break;
        }
        h ^= data.length;
        h ^= h >>> 16;
        h *= 0x85ebca6b;
        h ^= h >>> 13;
        h *= 0xc2b2ae35;
        h ^= h >>> 16;
        return h;
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

    /**
     * The router of a complete routing spec on its own, {@code <hash>@<ranges>} ({@link #spec()} reads back
     * as it): the buckets and shards are those it names, and it must cover every bucket exactly once.
     */
    public static ShardRouter ofSpec(String fullSpec) {
        int at = fullSpec.indexOf('@');
        if (at < 0) {
            throw new IllegalArgumentException("the routing spec '" + fullSpec + "' does not name its hash: write 'murmur3-32@" + fullSpec
                    + "' or 'crc32@" + fullSpec + "' (the Sluice scripts pass ${routing.bucket-map}, which has it)");
        }
        Hash hash = Hash.of(fullSpec.substring(0, at).trim());
        String spec = fullSpec.substring(at + 1);
        int buckets = 0;
        int shards = 0;
        for (String part : spec.split(",")) {
            String[] rangeAndShard = part.trim().split(":");
            String[] range = rangeAndShard[0].trim().split("-");
            buckets = Math.max(buckets, Integer.parseInt(range[range.length - 1].trim()) + 1);
            shards = Math.max(shards, Integer.parseInt(rangeAndShard[rangeAndShard.length - 1].trim()) + 1);
        }
        return new ShardRouter(hash, parseBucketMap(spec, buckets, shards));
    }

    /** This router as a full routing spec, {@code <hash>@<ranges>}, as the shards record it and SHARD_OF takes it. */
    public String spec() {
        return hash.id() + "@" + bucketMapSpec();
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
