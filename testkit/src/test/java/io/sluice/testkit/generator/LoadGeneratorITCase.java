package io.sluice.testkit.generator;

import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(SluiceStackExtension.class)
class LoadGeneratorITCase {

    @Test
    void holdsItsRateWithinFivePercentOverTenSeconds(TestStack stack) throws Exception {
        double rate = 3000;
        long t0 = System.nanoTime();
        long after1s;
        long after11s;
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), rate, System.currentTimeMillis(), false).start()) {
            Thread.sleep(1000); // measure past the producer's warm-up
            after1s = g.acked();
            long start = System.nanoTime();
            Thread.sleep(10_000);
            after11s = g.acked();
            double seconds = (System.nanoTime() - start) / 1e9;
            double measured = (after11s - after1s) / seconds;
            System.out.printf("generator: %.0f records/s over %.1f s (target %.0f)%n", measured, seconds, rate);
            assertThat(measured).isBetween(rate * 0.95, rate * 1.05);
        }
        // what the broker holds agrees with what was acknowledged
        long inTopics = stack.readAll(stack.config().kafka().userEventsTopic()).size() + stack.readAll(stack.config().kafka().subscriptionUpdatesTopic()).size();
        assertThat(inTopics).isGreaterThanOrEqualTo(after11s - 5);
    }

    @Test
    void aBoundedRunIsTheSameInKafkaForTheSameSeed(TestStack stack) throws Exception {
        Map<String, String> settings = Map.of("generator.count", "3000", "generator.seed", "99", "generator.malformed-fraction", "0.02");
        TestStack first = stack.fresh(settings);
        TestStack second = stack.fresh(settings);
        Oracle oracle = produce(first);
        produce(second);
        for (String topic : List.of("user-events", "subscription-updates", "campaigns")) {
            List<ConsumerRecord<byte[], byte[]>> a = first.readAll(first.config().kafka().allTopics().stream().filter(t -> t.endsWith(topic)).findFirst().orElseThrow());
            List<ConsumerRecord<byte[], byte[]>> b = second.readAll(second.config().kafka().allTopics().stream().filter(t -> t.endsWith(topic)).findFirst().orElseThrow());
            assertThat(a).hasSameSizeAs(b).isNotEmpty();
            for (int i = 0; i < a.size(); i++) {
                assertThat(b.get(i).partition()).isEqualTo(a.get(i).partition());
                assertThat(b.get(i).key()).isEqualTo(a.get(i).key());
                assertThat(b.get(i).value()).isEqualTo(a.get(i).value());
            }
        }
        long updates = first.readAll(first.config().kafka().subscriptionUpdatesTopic()).size();
        assertThat(oracle.good(first.config().kafka().subscriptionUpdatesTopic()) + oracle.malformed(first.config().kafka().subscriptionUpdatesTopic()))
                .isEqualTo(updates);
    }

    @Test
    void aRunThatEndsInAHotKeyBurstSendsWhatTheOracleHolds(TestStack stack) throws Exception {
        // the 10,001st record begins a burst of 2,000 hot-key updates: the count ends the run inside it
        TestStack s = stack.fresh(Map.of("generator.count", String.valueOf(RecordSequence.BLOCK + 1), "generator.hot-key", "true",
                "generator.hot-key-fraction", "0.2", "generator.update-fraction", "1"));
        Oracle oracle = produce(s);
        String topic = s.config().kafka().subscriptionUpdatesTopic();
        long inTopic = s.readAll(topic).size();
        assertThat(inTopic).as("updates in the topic").isGreaterThan(RecordSequence.BLOCK + 1);
        assertThat(oracle.good(topic) + oracle.malformed(topic)).as("updates in the oracle").isEqualTo(inTopic);
    }

    private static Oracle produce(TestStack stack) throws Exception {
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 0, 1_700_000_000_000L, false).start()) {
            g.awaitDone();
            return g.oracle();
        }
    }
}
