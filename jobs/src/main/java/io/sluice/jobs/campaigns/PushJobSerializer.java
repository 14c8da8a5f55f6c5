package io.sluice.jobs.campaigns;

import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.model.PushJob;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.connector.kafka.lineage.DefaultKafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.DefaultKafkaDatasetIdentifier;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacetProvider;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.formats.avro.registry.confluent.ConfluentRegistryAvroSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * Writes a {@link PushJob} to {@code push-queue}: key {@code app_id:user_id}, value Avro in the
 * Confluent wire format (schema registered under {@code <topic>-value}, as the Confluent serializer
 * does), and the CloudEvents Kafka protocol binding headers of binary mode, so a CloudEvents consumer
 * (e.g. a Knative KafkaSource) can trigger on it without knowing Sluice: {@code ce_specversion} 1.0,
 * {@code ce_id} = job id, {@code ce_source} ({@code push.ce-source} + "/" + campaign id),
 * {@code ce_type} {@value #CE_TYPE}, {@code ce_time} = created_at (RFC 3339), {@code ce_subject} =
 * user id, and {@code content-type}.
 */
public final class PushJobSerializer implements KafkaRecordSerializationSchema<PushJob>, KafkaDatasetFacetProvider {
    public static final String CE_TYPE = "io.sluice.push-job.v1";
    public static final String CONTENT_TYPE = "application/avro";

    private final String topic;
    private final String registryUrl;
    private final String ceSource;
    private transient ConfluentRegistryAvroSerializationSchema<GenericRecord> avro;

    public PushJobSerializer(String topic, String registryUrl, String ceSource) {
        this.topic = topic;
        this.registryUrl = registryUrl;
        this.ceSource = ceSource;
    }

    @Override
    public void open(SerializationSchema.InitializationContext context, KafkaSinkContext sinkContext) throws Exception {
        avro = ConfluentRegistryAvroSerializationSchema.forGeneric(topic + "-value", SluiceAvro.PUSH_JOB.schema(), registryUrl);
        avro.open(context);
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(PushJob job, KafkaSinkContext context, Long timestamp) {
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, null, null, utf8(job.key()), avro.serialize(SluiceAvro.PUSH_JOB.toAvro(job)));
        r.headers().add("ce_specversion", utf8("1.0"));
        r.headers().add("ce_id", utf8(job.jobId()));
        r.headers().add("ce_source", utf8(ceSource + "/" + job.campaignId()));
        r.headers().add("ce_type", utf8(CE_TYPE));
        r.headers().add("ce_time", utf8(Instant.ofEpochMilli(job.createdAt()).toString()));
        r.headers().add("ce_subject", utf8(job.userId()));
        r.headers().add("content-type", utf8(CONTENT_TYPE));
        return r;
    }

    /** The topic it writes, which the sink's POOLING transaction naming needs to list the transactions it owns. */
    @Override
    public Optional<KafkaDatasetFacet> getKafkaDatasetFacet() {
        return Optional.of(new DefaultKafkaDatasetFacet(DefaultKafkaDatasetIdentifier.ofTopics(List.of(topic))));
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
