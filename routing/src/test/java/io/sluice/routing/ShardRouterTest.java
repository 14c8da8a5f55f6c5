package io.sluice.routing;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ShardRouterTest {
    @Test
    void theCrc32BucketIsCrc32OfTheAppIdModuloBuckets() {
        // the documented rule, so other languages and Postgres can compute the same bucket
        CRC32 crc = new CRC32();
        crc.update("app-7".getBytes(StandardCharsets.UTF_8));
        assertThat(ShardRouter.bucketOf(ShardRouter.Hash.CRC32, "app-7", 1024)).isEqualTo((int) (crc.getValue() % 1024));
        // a fixed value guards against an accidental change of the rule: CRC-32("123456789") is 0xCBF43926
        assertThat(ShardRouter.bucketOf(ShardRouter.Hash.CRC32, "123456789", 1 << 20)).isEqualTo((int) (0xCBF43926L % (1 << 20)));
    }

    @Test
    void theDefaultBucketIsMurmur3x86x32WithSeedZeroModuloBuckets() {
        // published test vectors of MurmurHash3_x86_32, seed 0
        assertThat(ShardRouter.murmur3x86x32(new byte[0])).isZero();
        assertThat(ShardRouter.murmur3x86x32("hello".getBytes(StandardCharsets.UTF_8))).isEqualTo(0x248bfa47);
        assertThat(ShardRouter.murmur3x86x32("The quick brown fox jumps over the lazy dog".getBytes(StandardCharsets.UTF_8))).isEqualTo(0x2e4ff723);
        assertThat(ShardRouter.bucketOf("hello", 1 << 20)).isEqualTo((int) (0x248bfa47L % (1 << 20)));
        assertThat(ShardRouter.Hash.DEFAULT).isEqualTo(ShardRouter.Hash.MURMUR3_32);
    }

    @Test
    void shortSequentialIdsSpreadOverTheShardsWithTheDefaultHashAndClusterWithCrc32() {
        int[] murmur = new int[2];
        int[] crc = new int[2];
        for (int i = 0; i < 50; i++) { // the generator's apps
            murmur[ShardRouter.even(1024, 2).shardOf("app-" + i)]++;
            crc[new ShardRouter(ShardRouter.Hash.CRC32, ShardRouter.evenRanges(1024, 2)).shardOf("app-" + i)]++;
        }
        assertThat(murmur).containsExactly(25, 25);
        assertThat(crc).containsExactly(20, 30);
    }

    @Test
    void aSpecNamesItsHashAndReadsBackWithIt() {
        ShardRouter crc = ShardRouter.ofSpec("crc32@0-9:1,10-15:0");
        assertThat(crc.hash()).isEqualTo(ShardRouter.Hash.CRC32);
        assertThat(crc.spec()).isEqualTo("crc32@0-9:1,10-15:0");
        assertThatThrownBy(() -> ShardRouter.ofSpec("0-15:0")).as("no hash: refused, not guessed").hasMessageContaining("does not name its hash");
        assertThatThrownBy(() -> ShardRouter.ofSpec("md5@0-15:0")).hasMessageContaining("unknown bucket hash 'md5'");
    }

    @Test
    void evenRangesSplitBucketsContiguously() {
        ShardRouter r = ShardRouter.even(1024, 2);
        assertThat(r.shardCount()).isEqualTo(2);
        int[] perShard = new int[2];
        for (int i = 0; i < 10_000; i++) {
            String app = "app-" + i;
            int b = r.bucketOf(app);
            assertThat(r.shardOf(app)).isEqualTo(b < 512 ? 0 : 1);
            perShard[r.shardOf(app)]++;
        }
        assertThat(perShard[0]).isBetween(4500, 5500);
    }

    @Test
    void anExplicitMapMovesBucketsWithoutCodeChanges() {
        int[] map = ShardRouter.parseBucketMap("0-9:1, 10-15:0", 16, 2);
        assertThat(map[0]).isEqualTo(1);
        assertThat(map[15]).isEqualTo(0);
        assertThatThrownBy(() -> ShardRouter.parseBucketMap("0-9:0,9-15:1", 16, 2)).hasMessageContaining("bucket 9 is mapped twice");
        assertThatThrownBy(() -> ShardRouter.parseBucketMap("0-15:2", 16, 2)).hasMessageContaining("shard 2 does not exist");
        assertThatThrownBy(() -> ShardRouter.parseBucketMap("0-16:0", 16, 2)).hasMessageContaining("outside 0-15");
    }

    @Test
    void theSpecOfAMapReadsBackAsTheSameMap() {
        assertThat(ShardRouter.even(1024, 2).bucketMapSpec()).isEqualTo("0-511:0,512-1023:1");
        int[] moved = ShardRouter.parseBucketMap("0-9:1,10-12:0,13-15:1", 16, 2);
        String spec = new ShardRouter(ShardRouter.Hash.DEFAULT, moved).bucketMapSpec();
        assertThat(spec).isEqualTo("0-9:1,10-12:0,13-15:1");
        assertThat(ShardRouter.parseBucketMap(spec, 16, 2)).isEqualTo(moved);
        assertThat(ShardRouter.ofSpec("crc32@" + spec).bucketMapSpec()).isEqualTo(spec);
        assertThat(ShardRouter.ofSpec("crc32@" + spec).shardCount()).isEqualTo(2);
    }
}
