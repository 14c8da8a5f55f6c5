package io.sluice.jobs.common;

import io.sluice.core.avro.ConfluentWire;
import io.sluice.core.avro.RegistryDecoder;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.model.UserEvent;
import io.sluice.core.setup.StackSetup;
import io.sluice.testkit.SchemaRegistryStandIn;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericData;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Which bytes become which decode dead letter, without a job around them: {@link RegistryDecoder} against the
 * registry stand-in (a real HTTP endpoint, as the Confluent client needs) through the source's deserializer.
 */
class DecodingDeserializerTest {
    private static final String TOPIC = "user-events";
    private static SchemaRegistryStandIn registry;
    private static int eventSchemaId;
    private static int updateSchemaId;

    @BeforeAll
    static void startRegistry() throws Exception {
        registry = SchemaRegistryStandIn.start(0);
        eventSchemaId = StackSetup.register(registry.url(), TOPIC + "-value", SluiceAvro.USER_EVENT.schemaJson());
        updateSchemaId = StackSetup.register(registry.url(), "subscription-updates-value", SluiceAvro.SUBSCRIPTION_UPDATE.schemaJson());
    }

    @AfterAll
    static void stopRegistry() {
        registry.close();
    }

    /** Decodes one record at partition 3, offset 42 of user-events; returns what the source would emit. */
    private static Decoded<UserEvent> decode(byte[] value) {
        DecodingDeserializer<UserEvent> d = new DecodingDeserializer<>(new RegistryDecoder<>(SluiceAvro.USER_EVENT, registry.url()), null);
        List<Decoded<UserEvent>> out = new ArrayList<>();
        d.deserialize(new ConsumerRecord<>(TOPIC, 3, 42L, "app:u".getBytes(StandardCharsets.UTF_8), value), new Collector<>() {
            @Override
            public void collect(Decoded<UserEvent> record) {
                out.add(record);
            }

            @Override
            public void close() {
            }
        });
        assertThat(out).hasSize(1);
        return out.get(0);
    }

    private static byte[] event(UserEvent e) {
        return new ConfluentWire(eventSchemaId, SluiceAvro.USER_EVENT.schema()).encode(SluiceAvro.USER_EVENT.toAvro(e));
    }

    private static void assertDeadLetter(Decoded<UserEvent> d, byte[] value, String reasonStart) {
        assertThat(d.value).isNull();
        DeadLetter dl = d.deadLetter;
        assertThat(dl.stage()).isEqualTo("decode");
        assertThat(dl.reason()).startsWith(reasonStart);
        assertThat(dl.sourceTopic()).isEqualTo(TOPIC);
        assertThat(dl.partition()).isEqualTo(3);
        assertThat(dl.offset()).isEqualTo(42);
        assertThat(dl.value()).as("the original bytes, untouched").isEqualTo(value);
        assertThat(new String(dl.key(), StandardCharsets.UTF_8)).isEqualTo("app:u");
    }

    @Test
    void theDecoderNamesWhyBytesAreNotAnEvent() {
        UserEvent e = new UserEvent("app", "u", "open", 1_000, 1.5, Map.of("k", "v"));
        byte[] good = event(e);
        Decoded<UserEvent> ok = decode(good);
        assertThat(ok.deadLetter).isNull();
        assertThat(ok.value).isEqualTo(e);
        assertThat(ok.offset).isEqualTo(42);

        assertDeadLetter(decode(new byte[0]), new byte[0], "empty-value: ");
        byte[] json = "{\"app_id\":\"app\"}".getBytes(StandardCharsets.UTF_8);
        assertDeadLetter(decode(json), json, "not-wire-format: ");
        byte[] unknownId = good.clone();
        unknownId[1] = 0x7f; // a schema id never registered
        assertDeadLetter(decode(unknownId), unknownId, "unknown-schema-id: schema id " + ConfluentWire.schemaIdOf(unknownId));
        byte[] truncated = Arrays.copyOf(good, 9);
        assertDeadLetter(decode(truncated), truncated, "undecodable: schema id " + eventSchemaId);
        byte[] otherSchema = new ConfluentWire(updateSchemaId, SluiceAvro.SUBSCRIPTION_UPDATE.schema()).encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(
                new SubscriptionUpdate("app", "s", Map.of("a", "b"), List.of(), 1_000)));
        assertDeadLetter(decode(otherSchema), otherSchema, "undecodable: schema id " + updateSchemaId);
    }

    /** Nine bytes whose app_id claims a gigabyte: refused before anything that size is allocated. */
    @Test
    void aLengthClaimingMoreThanTheRecordHoldsIsADeadLetterBeforeAnyAllocation() {
        byte[] good = event(new UserEvent("app", "u", "open", 1_000, 1.5, Map.of()));
        byte[] claim = Arrays.copyOf(good, 12);
        // app_id's length: 2^30 as a zig-zag varint (2^31 = 80 80 80 80 08), then two bytes of it
        byte[] varint = {(byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, 0x08, 'a', 'b'};
        System.arraycopy(varint, 0, claim, 5, varint.length);
        assertDeadLetter(decode(claim), claim, "undecodable: schema id " + eventSchemaId
                + ": EOFException: a string claims 1073741824 but the record has 2 bytes left (of 7)");
    }

    /**
     * Subscription updates are read straight into the Java record ({@link SluiceAvro#direct}); whatever compatible
     * schema a producer wrote with, that must give the record the {@link org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord}
     * path gives: fields in another order, fields the reader does not have, a field the writer lacks (its default),
     * a writer union, a promoted type.
     */
    @Test
    void subscriptionUpdatesReadStraightIntoTheRecordFromEveryCompatibleWriterSchema() throws Exception {
        RegistryDecoder<SubscriptionUpdate> decoder = new RegistryDecoder<>(SluiceAvro.SUBSCRIPTION_UPDATE, registry.url());
        assertThat(SluiceAvro.SUBSCRIPTION_UPDATE.direct()).as("the path this test is about").isNotNull();
        SubscriptionUpdate u = new SubscriptionUpdate("app-ü", "sub-1", Map.of("a", "b", "c", ""), List.of("x", "y"), 1_700_000_000_123L);
        byte[] asWritten = new ConfluentWire(updateSchemaId, SluiceAvro.SUBSCRIPTION_UPDATE.schema()).encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(u));
        assertThat(decoder.decode(asWritten)).isEqualTo(u);
        assertThat(decoder.decode(asWritten)).as("the resolver kept for the schema id reads the next record too").isEqualTo(u);
        // long strings of multi-byte characters (hundreds of bytes, then about 105 KB), then short ones again, on one decoder
        for (String s : List.of("ü".repeat(200), "€😀".repeat(15_000), "k", "")) {
            SubscriptionUpdate v = new SubscriptionUpdate("app", "sub-" + s, Map.of("k-" + s, s, "k", "v"), List.of("u-" + s), 1L);
            assertThat(decoder.decode(new ConfluentWire(updateSchemaId, SluiceAvro.SUBSCRIPTION_UPDATE.schema()).encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(v))))
                    .as("strings of %d chars", s.length()).isEqualTo(v);
        }
        byte[] cut = new ConfluentWire(updateSchemaId, SluiceAvro.SUBSCRIPTION_UPDATE.schema()).encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(
                new SubscriptionUpdate("app", "s".repeat(300), Map.of(), List.of(), 1L)));
        byte[] truncatedString = Arrays.copyOf(cut, cut.length - 200);
        assertThatThrownBy(() -> decoder.decode(truncatedString)).as("a string cut short after long ones")
                .isInstanceOf(RegistryDecoder.Failure.class).hasMessageContaining("a string claims 300 but the record has");
        assertThat(decoder.decode(asWritten)).as("and the next record reads whole").isEqualTo(u);

        Schema evolved = new Schema.Parser().parse("""
                {"type": "record", "name": "SubscriptionUpdate", "namespace": "io.sluice.avro", "fields": [
                  {"name": "sent_at", "type": "int"},
                  {"name": "origin", "type": "string"},
                  {"name": "set", "type": {"type": "map", "values": "string"}},
                  {"name": "app_id", "type": ["null", "string"]},
                  {"name": "tags", "type": {"type": "array", "items": "long"}},
                  {"name": "subscription_id", "type": "string"}
                ]}""");
        int evolvedId = StackSetup.register(registry.url(), "evolved-subscription-updates-value", evolved.toString());
        GenericRecord r = new GenericData.Record(evolved);
        r.put("sent_at", 1_234);
        r.put("origin", "ruby");
        r.put("set", Map.of("k", "v"));
        r.put("app_id", "app");
        r.put("tags", List.of(1L, 2L, 3L));
        r.put("subscription_id", "sub-2");
        assertThat(decoder.decode(new ConfluentWire(evolvedId, evolved).encode(r)))
                .as("reordered, two fields the reader skips, unset from its default, a union, int promoted to long")
                .isEqualTo(new SubscriptionUpdate("app", "sub-2", Map.of("k", "v"), List.of(), 1_234L));
        assertThat(decoder.decode(asWritten)).as("records of the first schema id still read after another").isEqualTo(u);

        r.put("app_id", null);
        byte[] nullAppId = new ConfluentWire(evolvedId, evolved).encode(r);
        assertThatThrownBy(() -> decoder.decode(nullAppId)).isInstanceOf(RegistryDecoder.Failure.class)
                .hasMessageStartingWith("schema id " + evolvedId + ": AvroTypeException");
        byte[] truncated = Arrays.copyOf(asWritten, asWritten.length - 3);
        assertThatThrownBy(() -> decoder.decode(truncated)).isInstanceOf(RegistryDecoder.Failure.class)
                .hasMessageStartingWith("schema id " + updateSchemaId + ": ");
        assertThat(decoder.decode(asWritten)).as("a failed record leaves the resolver usable").isEqualTo(u);
    }
}
