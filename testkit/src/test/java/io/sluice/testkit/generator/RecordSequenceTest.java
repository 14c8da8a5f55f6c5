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

    /** 1,000 records/s over 4 partitions, partition 1 idle from 12 s to 20 s of event time: none in the span, then a late one. */
    @Test
    void anIdlePartitionGetsNoEventInItsSpanAndThenALateOneFirst() {
        long epoch = 1_700_000_000_000L;
        Oracle oracle = new Oracle(false);
        RecordSequence seq = sequence(epoch, oracle, "generator.update-fraction", "0", "generator.campaigns", "0", "generator.rate", "1000",
                "kafka.partitions", "4", "generator.idle-partition", "1", "generator.idle-from", "12s", "generator.idle-for", "8s");
        int before = 0;
        int during = 0;
        long firstBack = -1;
        for (int i = 0; i < 30_000; i++) {
            GeneratedRecord r = seq.next();
            long nominal = epoch + i;
            int partition = org.apache.kafka.common.utils.Utils.toPositive(org.apache.kafka.common.utils.Utils.murmur2(r.key())) % 4;
            if (partition != 1) {
                continue;
            }
            if (nominal < epoch + 12_000) {
                before++;
            } else if (nominal < epoch + 20_000) {
                during++;
            } else if (firstBack < 0) {
                firstBack = i;
            }
        }
        assertThat(before).as("partition 1's events before its idle span").isGreaterThan(1_000);
        assertThat(during).as("partition 1's events in its idle span").isZero();
        assertThat(firstBack).as("partition 1 back").isPositive();
        assertThat(oracle.lateEvents()).as("late events (late-fraction 0): the first one back").isEqualTo(1);
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
