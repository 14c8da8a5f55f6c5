package io.sluice.testkit;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.avro.ConfluentWire;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.avro.RegistryDecoder;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.model.UserEvent;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.generator.GeneratorConfig;
import io.sluice.testkit.generator.Oracle;
import io.sluice.core.kafka.KafkaClients;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/** One test's view of the stack: its own topics and databases, the config that names them, and helpers to read them back. */
public record TestStack(EmbeddedStack stack, EmbeddedStack.Namespace namespace) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public SluiceConfig config() {
        return namespace.config();
    }

    /** The load generator's settings for this stack (defaults, or the {@code generator.*} overrides given to {@link #fresh}). */
    public GeneratorConfig generator() {
        return namespace.generator();
    }

    public Map<String, Integer> schemaIds() {
        return namespace.schemaIds();
    }

    /** Another fresh topic set and databases on the same servers, with extra config keys (e.g. generator settings). */
    public TestStack fresh(Map<String, String> overrides) {
        return SluiceStackExtension.fresh(stack, overrides);
    }

    /** The same topics and databases with some config keys changed (e.g. {@code subscriptions.source-epoch}); nothing is set up again. */
    public TestStack with(Map<String, String> changes) {
        io.sluice.core.config.RawConfig raw = io.sluice.core.config.RawConfig.empty();
        Map<String, String> settings = new java.util.TreeMap<>(namespace.settings());
        settings.putAll(changes);
        settings.forEach((k, v) -> raw.put(k, v, "test stack"));
        SluiceConfig config = SluiceConfig.from(raw);
        GeneratorConfig generator = GeneratorConfig.from(raw);
        raw.rejectUnread();
        return new TestStack(stack, new EmbeddedStack.Namespace(config, generator, namespace.schemaIds(), Map.copyOf(settings)));
    }

    /** An update in the wire format of {@code subscription-updates}, for tests that produce records themselves. */
    public byte[] encode(SubscriptionUpdate u) {
        return new ConfluentWire(schemaIds().get(config().kafka().subscriptionUpdatesTopic()), SluiceAvro.SUBSCRIPTION_UPDATE.schema())
                .encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(u));
    }

    /** A push job in the wire format of {@code push-queue}, for tests that produce records themselves. */
    public byte[] encode(PushJob j) {
        return new ConfluentWire(schemaIds().get(config().kafka().pushQueueTopic()), SluiceAvro.PUSH_JOB.schema()).encode(SluiceAvro.PUSH_JOB.toAvro(j));
    }

    /** A byte-array producer for this stack, with {@code extra} client settings (e.g. a transactional id). */
    public KafkaProducer<byte[], byte[]> producer(Map<String, String> extra) {
        java.util.Properties p = KafkaClients.clientProperties(config());
        p.putAll(extra);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    public Connection shard(int i) throws SQLException {
        return config().shards().list().get(i).connect();
    }

    /** Every record of {@code topic} visible to a {@code read_committed} consumer, partition by partition in offset order. */
    public List<ConsumerRecord<byte[], byte[]>> readAll(String topic) {
        return StackProbe.readCommitted(config(), topic);
    }

    /** Sends updates to {@code subscription-updates} in the wire format, key {@code app_id}, in order. */
    public void send(SubscriptionUpdate... updates) throws Exception {
        send(config().kafka().subscriptionUpdatesTopic(), SluiceAvro.SUBSCRIPTION_UPDATE, SubscriptionUpdate::appId, updates);
    }

    /** Sends events to {@code user-events}, key {@code app_id:user_id}, in order. */
    public void send(UserEvent... events) throws Exception {
        send(config().kafka().userEventsTopic(), SluiceAvro.USER_EVENT, UserEvent::key, events);
    }

    /** Sends definitions to {@code campaigns}, key {@code campaign_id}, in order. */
    public void send(Campaign... campaigns) throws Exception {
        send(config().kafka().campaignsTopic(), SluiceAvro.CAMPAIGN, Campaign::key, campaigns);
    }

    @SafeVarargs
    private <T> void send(String topic, SluiceAvro<T> avro, Function<T, String> key, T... values) throws Exception {
        ConfluentWire wire = new ConfluentWire(schemaIds().get(topic), avro.schema());
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(KafkaClients.clientProperties(config()), new ByteArraySerializer(), new ByteArraySerializer())) {
            List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
            for (T v : values) { // one producer, idempotent: offset order is the order given
                sent.add(p.send(new ProducerRecord<>(topic, key.apply(v).getBytes(StandardCharsets.UTF_8), wire.encode(avro.toAvro(v)))));
            }
            for (var f : sent) {
                f.get();
            }
        }
    }

    /** Fails unless {@code actual} window rows are exactly {@code expected}: the same keys, counts, and sums within 1e-6. */
    public static void assertWindowRows(Map<String, Oracle.WindowRow> actual, Map<String, Oracle.WindowRow> expected, String context) {
        org.assertj.core.api.Assertions.assertThat(actual.keySet()).as(context).isEqualTo(expected.keySet());
        for (var e : expected.entrySet()) {
            Oracle.WindowRow a = actual.get(e.getKey());
            org.assertj.core.api.Assertions.assertThat(a.count()).as(e.getKey() + " count after " + context).isEqualTo(e.getValue().count());
            org.assertj.core.api.Assertions.assertThat(a.sum()).as(e.getKey() + " sum after " + context)
                    .isCloseTo(e.getValue().sum(), org.assertj.core.api.Assertions.within(1e-6));
        }
    }

    /** Every {@code user_event_counts} row on every shard, keyed {@code app/user/name/window start ms}. */
    public Map<String, Oracle.WindowRow> windowRows() throws Exception {
        Map<String, Oracle.WindowRow> out = new HashMap<>();
        for (int shard = 0; shard < config().shards().list().size(); shard++) {
            try (Connection c = shard(shard); ResultSet rs = c.createStatement().executeQuery(
                    "SELECT app_id, user_id, event_name, (extract(epoch FROM window_start) * 1000)::bigint, count, sum FROM user_event_counts")) {
                while (rs.next()) {
                    String key = rs.getString(1) + "/" + rs.getString(2) + "/" + rs.getString(3) + "/" + rs.getLong(4);
                    if (out.put(key, new Oracle.WindowRow(rs.getLong(5), rs.getDouble(6))) != null) {
                        throw new AssertionError("row " + key + " is on two shards");
                    }
                }
            }
        }
        return out;
    }

    /** The push jobs a {@code read_committed} consumer sees on {@code push-queue}, decoded, in offset order per partition. */
    public List<PushJob> pushJobs() throws Exception {
        RegistryDecoder<PushJob> decoder = new RegistryDecoder<>(SluiceAvro.PUSH_JOB, config().registry().url());
        List<PushJob> out = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(config().kafka().pushQueueTopic())) {
            out.add(decoder.decode(r.value()));
        }
        return out;
    }

    /** Every {@code subscriptions} row on every shard as {@code app/subscription -> properties}; fails if a row is on two shards. */
    public Map<String, Map<String, String>> subscriptionRows() throws Exception {
        Map<String, Map<String, String>> out = new HashMap<>();
        for (int shard = 0; shard < config().shards().list().size(); shard++) {
            try (Connection c = shard(shard);
                 ResultSet rs = c.createStatement().executeQuery("SELECT app_id, subscription_id, properties::text FROM subscriptions")) {
                while (rs.next()) {
                    @SuppressWarnings("unchecked")
                    Map<String, String> props = JSON.readValue(rs.getString(3), TreeMap.class);
                    if (out.put(rs.getString(1) + "/" + rs.getString(2), props) != null) {
                        throw new AssertionError("row " + rs.getString(1) + "/" + rs.getString(2) + " is on two shards");
                    }
                }
            }
        }
        return out;
    }

    /** The oracle's subscriptions in the shape of {@link #subscriptionRows()}. */
    public static Map<String, Map<String, String>> expectedRows(Oracle oracle) {
        Map<String, Map<String, String>> expected = new HashMap<>();
        oracle.subscriptions().forEach((k, v) -> expected.put(k.appId() + "/" + k.subscriptionId(), v));
        return expected;
    }

    /**
     * Polls {@link #subscriptionRows()} until it equals {@code expected}; returns it. After {@code timeoutMs} fails
     * with how the last read differs (rows missing, extra and different, with examples).
     */
    public Map<String, Map<String, String>> awaitSubscriptionRows(Map<String, Map<String, String>> expected, long timeoutMs) throws Exception {
        try {
            return Await.until("subscription rows equal to the expected " + expected.size() + " rows", Duration.ofMillis(timeoutMs),
                    Duration.ofMillis(500), this::subscriptionRows, expected::equals);
        } catch (AssertionError timedOut) {
            assertSubscriptionRows(subscriptionRows(), expected, "waiting " + timeoutMs + " ms");
            throw timedOut; // equal on the read after the deadline: still a timeout
        }
    }

    /**
     * Fails unless {@code actual} subscription rows are exactly {@code expected}, saying how many rows are missing,
     * extra and different, with the first five of each.
     */
    public static void assertSubscriptionRows(Map<String, Map<String, String>> actual, Map<String, Map<String, String>> expected, String context) {
        List<String> missing = expected.keySet().stream().filter(k -> !actual.containsKey(k)).sorted().toList();
        List<String> extra = actual.keySet().stream().filter(k -> !expected.containsKey(k)).sorted().toList();
        List<String> different = expected.keySet().stream().filter(k -> actual.containsKey(k) && !actual.get(k).equals(expected.get(k)))
                .sorted().map(k -> k + " expected " + expected.get(k) + " but was " + actual.get(k)).toList();
        if (!missing.isEmpty() || !extra.isEmpty() || !different.isEmpty()) {
            throw new AssertionError("subscription rows after " + context + " differ from the expected " + expected.size() + ": "
                    + missing.size() + " missing " + first(missing) + ", " + extra.size() + " extra " + first(extra) + ", "
                    + different.size() + " different " + first(different));
        }
    }

    private static List<String> first(List<String> l) {
        return l.subList(0, Math.min(5, l.size()));
    }

    /** A header of a record as text. */
    public static String header(ConsumerRecord<byte[], byte[]> r, String name) {
        var h = r.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }
}
