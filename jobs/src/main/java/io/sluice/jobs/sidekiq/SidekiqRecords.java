package io.sluice.jobs.sidekiq;

import io.sluice.core.avro.RegistryDecoder;
import io.sluice.jobs.common.Decoded;
import io.sluice.jobs.common.DeadLetter;
import org.apache.flink.api.common.typeinfo.TypeHint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.util.Collector;

/**
 * The bridge's Kafka deserializer: a record decoded as its writer schema has it (Confluent wire format) and mapped to a
 * Sidekiq job ({@link SidekiqMapping}), or a dead letter: stage {@code decode} for bytes that are not a registered Avro
 * record, stage {@code sidekiq} for a record that cannot be a job.
 */
final class SidekiqRecords implements KafkaRecordDeserializationSchema<Decoded<SidekiqPush>> {
    static final TypeInformation<Decoded<SidekiqPush>> TYPE = TypeInformation.of(new TypeHint<>() {
    });
    private final RegistryDecoder<GenericRecord> decoder;
    private final SidekiqMapping mapping;

    SidekiqRecords(String registryUrl, SidekiqMapping mapping) {
        this.decoder = RegistryDecoder.generic(registryUrl);
        this.mapping = mapping;
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Decoded<SidekiqPush>> out) {
        GenericRecord value;
        try {
            value = decoder.decode(record.value()); // a registry that does not answer throws on: the job restarts and retries
        } catch (RegistryDecoder.Failure f) {
            out.collect(Decoded.dead(deadLetter(record, "decode", f.kind() + ": " + f.getMessage())));
            return;
        } catch (StackOverflowError deep) { // a recursive schema's record nested deeper than the decoder's stack
            out.collect(Decoded.dead(deadLetter(record, "decode", "undecodable: the record nests too deeply to decode")));
            return;
        }
        SidekiqMapping.Result job;
        try {
            job = mapping.map(value);
        } catch (RuntimeException unforeseen) { // a record the mapping's checks did not foresee: a dead letter, not a restart that reads it again
            out.collect(Decoded.dead(deadLetter(record, "sidekiq", "could not be made a job: " + unforeseen)));
            return;
        }
        if (job.problem() != null) {
            out.collect(Decoded.dead(deadLetter(record, "sidekiq", job.problem())));
            return;
        }
        out.collect(Decoded.of(job.push(), record.partition(), record.offset(), null, null));
    }

    private static DeadLetter deadLetter(ConsumerRecord<byte[], byte[]> r, String stage, String reason) {
        return new DeadLetter(r.topic(), r.partition(), r.offset(), r.key(), r.value(), stage, reason);
    }

    @Override
    public TypeInformation<Decoded<SidekiqPush>> getProducedType() {
        return TYPE;
    }
}
