package io.sluice.devstack.jobs;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.avro.ConfluentWire;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.devstack.generator.LoadGenerator;
import io.sluice.devstack.generator.Oracle;
import io.sluice.devstack.kit.SluiceStackExtension;
import io.sluice.devstack.kit.TestStack;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.jobs.subscriptions.ShardedUpsertSink;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/** The subscription job on a MiniCluster against the real broker, registry stand-in and two Postgres shards. */
@ExtendWith(SluiceStackExtension.class)
class SubscriptionJobITCase {
    private static final ObjectMapper JSON = new ObjectMapper();

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder().setNumberTaskManagers(1).setNumberSlotsPerTaskManager(4).build());

    @Test
    void eightToTenThenEightToTwentyEndsAsTwentyInOneFlushAndInSeparateFlushes(TestStack base) throws Exception {
        for (String flushMaxRows : List.of("100000", "1")) { // one flush holds both updates / every update is its own flush
            TestStack stack = base.fresh(Map.of("kafka.partitions", "2", "subscriptions.flush-max-rows", flushMaxRows,
                    "subscriptions.flush-interval", "10m", "subscriptions.parallelism", "4"));
            try (KafkaProducer<byte[], byte[]> p = producer(stack)) {
                send(p, stack, new SubscriptionUpdate("app-1", "device-8", Map.of("level", "10"), List.of(), 1000));
                for (int i = 0; i < 50; i++) { // other subscriptions in between, on both partitions
                    send(p, stack, new SubscriptionUpdate("app-" + (i % 7), "other-" + i, Map.of("level", "1"), List.of(), 1001 + i));
                }
                send(p, stack, new SubscriptionUpdate("app-1", "device-8", Map.of("level", "20"), List.of(), 2000));
            }
            runBounded(stack);
            Map<String, String> row = rows(stack).get("app-1/device-8");
            assertThat(row).as("flush-max-rows " + flushMaxRows).containsExactly(Map.entry("level", "20"));
        }
    }

    @Test
    void aSkewedRunWithAHotKeyAndMalformedRecordsEqualsTheOracle(TestStack base) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.count", "110000", "generator.update-fraction", "1", "generator.apps", "40",
                "generator.subscriptions-per-app", "2000", "generator.hot-key", "true", "generator.malformed-fraction", "0.01",
                "subscriptions.parallelism", "2"));
        Oracle oracle;
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.schemaIds(), 0, 1_700_000_000_000L, false).start()) {
            oracle = g.awaitDone().oracle();
        }
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        assertThat(oracle.good(topic)).isGreaterThanOrEqualTo(100_000);
        assertThat(oracle.subscriptions()).hasSizeGreaterThanOrEqualTo(10_000);

        runBounded(stack);

        Map<String, Map<String, String>> actual = rows(stack);
        Map<String, Map<String, String>> expected = new HashMap<>();
        oracle.subscriptions().forEach((k, v) -> expected.put(k.appId() + "/" + k.subscriptionId(), v));
        assertThat(actual.keySet()).isEqualTo(expected.keySet());
        for (var e : expected.entrySet()) {
            assertThat(actual.get(e.getKey())).as(e.getKey()).isEqualTo(e.getValue());
        }
        // every row sits on the shard the router names
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery("SELECT DISTINCT app_id FROM subscriptions")) {
                while (rs.next()) {
                    assertThat(stack.config().router().shardOf(rs.getString(1))).isEqualTo(shard);
                }
            }
        }
        // every malformed record is a dead letter with its source and a reason; nothing else is
        List<ConsumerRecord<byte[], byte[]>> dead = stack.readAll(stack.config().kafka().deadLettersTopic());
        assertThat(dead).hasSize((int) oracle.malformed(topic));
        for (ConsumerRecord<byte[], byte[]> d : dead) {
            assertThat(header(d, DeadLetterSerializer.TOPIC)).isEqualTo(topic);
            assertThat(header(d, DeadLetterSerializer.STAGE)).isEqualTo("decode");
            assertThat(header(d, DeadLetterSerializer.REASON)).matches("(not-wire-format|unknown-schema-id|undecodable): .+");
            assertThat(Long.parseLong(header(d, DeadLetterSerializer.OFFSET))).isNotNegative();
        }
        // the progress table accounts for every good update
        long committed = 0;
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery("SELECT coalesce(sum(records), 0) FROM sluice_progress")) {
                rs.next();
                committed += rs.getLong(1);
            }
        }
        assertThat(committed).isEqualTo(oracle.good(topic));
    }

    private static void runBounded(TestStack stack) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(500);
        SubscriptionJob.defineWorkflow(env, stack.config(), SubscriptionJob.source(stack.config(), true),
                new ShardedUpsertSink(stack.config(), SubscriptionJob.NAME), KafkaIo.deadLetterSink(stack.config()));
        env.execute("subscriptions-test");
    }

    static Map<String, Map<String, String>> rows(TestStack stack) throws Exception {
        Map<String, Map<String, String>> out = new HashMap<>();
        for (int shard = 0; shard < 2; shard++) {
            try (Connection c = stack.shard(shard);
                 ResultSet rs = c.createStatement().executeQuery("SELECT app_id, subscription_id, properties::text FROM subscriptions")) {
                while (rs.next()) {
                    @SuppressWarnings("unchecked")
                    Map<String, String> props = JSON.readValue(rs.getString(3), TreeMap.class);
                    assertThat(out.put(rs.getString(1) + "/" + rs.getString(2), props)).as("row on two shards").isNull();
                }
            }
        }
        return out;
    }

    private static String header(ConsumerRecord<byte[], byte[]> r, String name) {
        return new String(r.headers().lastHeader(name).value(), StandardCharsets.UTF_8);
    }

    private static KafkaProducer<byte[], byte[]> producer(TestStack stack) {
        return new KafkaProducer<>(KafkaIo.clientProperties(stack.config()), new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static void send(KafkaProducer<byte[], byte[]> p, TestStack stack, SubscriptionUpdate u) throws Exception {
        String topic = stack.config().kafka().subscriptionUpdatesTopic();
        byte[] value = new ConfluentWire(stack.schemaIds().get(topic), SluiceAvro.SUBSCRIPTION_UPDATE.schema()).encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(u));
        p.send(new ProducerRecord<>(topic, u.appId().getBytes(StandardCharsets.UTF_8), value)).get();
    }
}
