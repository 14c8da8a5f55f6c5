package io.sluice.testkit;

import io.sluice.core.avro.RegistryDecoder;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.setup.StackSetup;
import org.apache.flink.avro.registry.confluent.shaded.io.confluent.kafka.schemaregistry.avro.AvroSchema;
import org.apache.flink.avro.registry.confluent.shaded.io.confluent.kafka.schemaregistry.client.CachedSchemaRegistryClient;
import org.apache.flink.avro.registry.confluent.shaded.io.confluent.kafka.schemaregistry.client.rest.exceptions.RestClientException;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.formats.avro.registry.confluent.ConfluentRegistryAvroDeserializationSchema;
import org.apache.flink.formats.avro.registry.confluent.ConfluentRegistryAvroSerializationSchema;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The stand-in against the real Confluent client as relocated inside Flink's avro-confluent format, and Flink's own Avro registry schemas. */
class SchemaRegistryStandInTest {
    private static SchemaRegistryStandIn registry;

    @BeforeAll
    static void start() throws Exception {
        registry = SchemaRegistryStandIn.start(0);
    }

    @AfterAll
    static void stop() {
        registry.close();
    }

    @Test
    void flinkSerializerAndDeserializerRoundTripThroughTheStandIn() throws Exception {
        var update = new SubscriptionUpdate("app-1", "sub-9", Map.of("plan", "pro"), List.of("trial"), 1_700_000_000_000L);
        var serializer = ConfluentRegistryAvroSerializationSchema.forGeneric("roundtrip-value", SluiceAvro.SUBSCRIPTION_UPDATE.schema(), registry.url());
        serializer.open(null);
        byte[] bytes = serializer.serialize(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(update));

        assertThat(bytes[0]).isZero(); // Confluent magic byte, then the id the stand-in issued
        var deserializer = ConfluentRegistryAvroDeserializationSchema.forGeneric(SluiceAvro.SUBSCRIPTION_UPDATE.schema(), registry.url());
        GenericRecord back = deserializer.deserialize(bytes);
        assertThat(SluiceAvro.SUBSCRIPTION_UPDATE.fromAvro(back)).isEqualTo(update);
        assertThat(new RegistryDecoder<>(SluiceAvro.SUBSCRIPTION_UPDATE, registry.url()).decode(bytes)).isEqualTo(update);
    }

    @Test
    void theConfluentClientRegistersListsAndFetches() throws Exception {
        var client = new CachedSchemaRegistryClient(registry.url(), 10);
        int id = client.register("events-value", new AvroSchema(SluiceAvro.USER_EVENT.schemaJson()));
        assertThat(client.register("events-value", new AvroSchema(SluiceAvro.USER_EVENT.schemaJson()))).isEqualTo(id);
        assertThat(client.getAllSubjects()).contains("events-value");
        assertThat(client.getAllVersions("events-value")).containsExactly(1);
        var latest = client.getLatestSchemaMetadata("events-value");
        assertThat(latest.getId()).isEqualTo(id);
        assertThat(latest.getVersion()).isEqualTo(1);
        assertThat(new AvroSchema(latest.getSchema()).rawSchema()).isEqualTo(SluiceAvro.USER_EVENT.schema());
        assertThat(((AvroSchema) new CachedSchemaRegistryClient(registry.url(), 10).getSchemaById(id)).rawSchema())
                .isEqualTo(SluiceAvro.USER_EVENT.schema());
    }

    @Test
    void aBackwardCompatibleChangeIsANewVersionAndAnIncompatibleOneIs409() throws Exception {
        var client = new CachedSchemaRegistryClient(registry.url(), 10);
        String v1 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}";
        String v2 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"int\",\"default\":0}]}";
        String bad = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"c\",\"type\":\"int\"}]}";
        int id1 = client.register("evolve-value", new AvroSchema(v1));
        int id2 = client.register("evolve-value", new AvroSchema(v2));
        assertThat(id2).isNotEqualTo(id1);
        assertThat(client.getAllVersions("evolve-value")).containsExactly(1, 2);
        assertThatThrownBy(() -> client.register("evolve-value", new AvroSchema(bad)))
                .isInstanceOfSatisfying(RestClientException.class, e -> assertThat(e.getStatus()).isEqualTo(409));
        assertThat(client.getAllVersions("evolve-value")).containsExactly(1, 2);
    }

    @Test
    void unknownIdsAndSubjectsAnswer404WithConfluentErrorCodes() throws Exception {
        var client = new CachedSchemaRegistryClient(registry.url(), 10);
        assertThatThrownBy(() -> client.getSchemaById(424242))
                .isInstanceOfSatisfying(RestClientException.class, e -> assertThat(e.getErrorCode()).isEqualTo(40403));
        assertThatThrownBy(() -> client.getLatestSchemaMetadata("no-such-subject"))
                .isInstanceOfSatisfying(RestClientException.class, e -> assertThat(e.getErrorCode()).isEqualTo(40401));
        HttpResponse<String> resp = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create(registry.url() + "/subjects/no-such-subject/versions")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(resp.statusCode()).isEqualTo(404);
        assertThat(resp.headers().firstValue("Content-Type")).hasValue("application/vnd.schemaregistry.v1+json");
    }

    @Test
    void theDecoderGivesReasonsInsteadOfExceptions() throws Exception {
        var decoder = new RegistryDecoder<>(SluiceAvro.SUBSCRIPTION_UPDATE, registry.url());
        assertThatThrownBy(() -> decoder.decode("{\"json\":true}".getBytes()))
                .isInstanceOfSatisfying(RegistryDecoder.Failure.class, f -> assertThat(f.kind()).isEqualTo("not-wire-format"));
        assertThatThrownBy(() -> decoder.decode(new byte[] {0, 0, 0x0f, 0x42, 0x3f, 2, 65}))
                .isInstanceOfSatisfying(RegistryDecoder.Failure.class, f -> assertThat(f.kind()).isEqualTo("unknown-schema-id"));
        int id = StackSetup.register(registry.url(), "decoder-value", SluiceAvro.SUBSCRIPTION_UPDATE.schemaJson());
        assertThatThrownBy(() -> decoder.decode(new byte[] {0, 0, 0, 0, (byte) id, 10, 65}))
                .isInstanceOfSatisfying(RegistryDecoder.Failure.class, f -> assertThat(f.kind()).isEqualTo("undecodable"));
    }

    /** A subject's level decides what may follow: BACKWARD by default, FORWARD and FULL when set; an unset subject has no level of its own. */
    @Test
    void compatibilityLevelsPerSubjectDecideWhatMayFollow() throws Exception {
        var client = new CachedSchemaRegistryClient(registry.url(), 10);
        String subject = "levels-value";
        AvroSchema v1 = new AvroSchema("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}");
        AvroSchema requiredB = new AvroSchema("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},"
                + "{\"name\":\"b\",\"type\":\"string\"}]}");
        AvroSchema withoutA = new AvroSchema("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"b\",\"type\":\"string\"}]}");
        client.register(subject, v1);
        assertThat(client.testCompatibility(subject, requiredB)).as("a required new field under BACKWARD").isFalse();
        assertThatThrownBy(() -> client.register(subject, requiredB)).isInstanceOf(RestClientException.class).hasMessageContaining("incompatible");
        client.updateCompatibility(subject, "FORWARD");
        assertThat(client.getCompatibility(subject)).isEqualTo("FORWARD");
        assertThat(client.testCompatibility(subject, requiredB)).as("old readers ignore the new field under FORWARD").isTrue();
        client.register(subject, requiredB);
        client.updateCompatibility(subject, "FULL");
        assertThat(client.testCompatibility(subject, withoutA)).as("dropping a field without a default under FULL").isFalse();
        HttpResponse<String> unset = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(registry.url() + "/config/never-configured-value")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(unset.statusCode()).isEqualTo(404);
        assertThat(unset.body()).contains("40408");
        assertThat(client.getCompatibility("")).as("the global level").isEqualTo("BACKWARD");
    }
}
