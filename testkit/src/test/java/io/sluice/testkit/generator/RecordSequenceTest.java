package io.sluice.testkit.generator;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class RecordSequenceTest {
    private static final Map<String, Integer> IDS = Map.of("user-events", 1, "subscription-updates", 2, "campaigns", 3, "push-queue", 4);

    /** A sequence over a two-shard config with the given generator keys; every key must be read. */
    static RecordSequence sequence(long epochMs, Oracle oracle, String... kv) {
        RawConfig raw = RawConfig.empty().put("kafka.bootstrap", "x:1", "t").put("registry.url", "http://x", "t")
                .put("shards.urls", "jdbc:postgresql://x/a,jdbc:postgresql://y/a", "t");
        for (int i = 0; i < kv.length; i += 2) {
            raw.put(kv[i], kv[i + 1], "t");
        }
        SluiceConfig config = SluiceConfig.from(raw);
        GeneratorConfig generator = GeneratorConfig.from(raw);
        raw.rejectUnread();
        return new RecordSequence(config, generator, IDS, epochMs, oracle);
    }

    @Test
    void theSameSeedGivesByteIdenticalRecordsAndAnotherSeedDoesNot() {
        String[] c = {"generator.seed", "7", "generator.malformed-fraction", "0.01", "generator.hot-key", "true",
                "generator.out-of-order-fraction", "0.1", "generator.late-fraction", "0.01"};
        RecordSequence a = sequence(1_700_000_000_000L, new Oracle(false), c);
        RecordSequence b = sequence(1_700_000_000_000L, new Oracle(false), c);
        RecordSequence other = sequence(1_700_000_000_000L, new Oracle(false), "generator.seed", "8");
        int differ = 0;
        for (int i = 0; i < 50_000; i++) {
            GeneratedRecord x = a.next();
            GeneratedRecord y = b.next();
            GeneratedRecord z = other.next();
            assertThat(y.topic()).isEqualTo(x.topic());
            assertThat(y.key()).isEqualTo(x.key());
            assertThat(y.value()).isEqualTo(x.value());
            if (!Arrays.equals(x.value(), z.value())) {
                differ++;
            }
        }
        assertThat(differ).isGreaterThan(45_000);
    }

    @Test
    void theOracleAppliesUpdatesInOrderAndCountsMalformed() {
        Oracle oracle = new Oracle(false);
        RecordSequence seq = sequence(0, oracle, "generator.malformed-fraction", "0.05", "generator.update-fraction", "1", "generator.hot-key", "true");
        int malformed = 0;
        int hot = 0;
        for (int i = 0; i < 30_005; i++) { // 5 campaigns first
            GeneratedRecord r = seq.next();
            malformed += r.malformed() ? 1 : 0;
            hot += new String(r.value()).contains(RecordSequence.HOT_SUBSCRIPTION) ? 1 : 0;
        }
        assertThat(oracle.malformed("subscription-updates")).isEqualTo(malformed).isBetween(1200L, 1800L);
        assertThat(hot).isGreaterThanOrEqualTo(2 * 2000); // two bursts of 2,000 by 30,000 records
        var hotRow = oracle.subscriptions().get(new Oracle.SubscriptionKey("app-0", RecordSequence.HOT_SUBSCRIPTION));
        assertThat(hotRow.get("counter")).isEqualTo(String.valueOf(hot - 1));
    }

    @Test
    void zipfMakesRankOneTheMostFrequentWithThePowerLawRatio() {
        Zipf zipf = new Zipf(1000, 1.0);
        SplittableRandom r = new SplittableRandom(1);
        int[] counts = new int[1001];
        for (int i = 0; i < 200_000; i++) {
            counts[(int) zipf.sample(r)]++;
        }
        double ratio = (double) counts[1] / counts[2];
        assertThat(ratio).isBetween(1.8, 2.2); // 2^1 for exponent 1
        assertThat(counts[1]).isGreaterThan(counts[10] * 8);
        assertThat(new Zipf(5, 0).sample(r)).isBetween(1L, 5L);
    }
}
