package io.sluice.jobs.common;

import io.sluice.core.avro.RegistryDecoder;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;

/**
 * Kafka source deserializer: decodes Confluent wire-format Avro with {@link RegistryDecoder}; what
 * cannot be decoded becomes a {@link DeadLetter} (stage {@code decode}) instead of failing the job.
 */
public final class DecodingDeserializer<T> implements KafkaRecordDeserializationSchema<Decoded<T>> {
    private final RegistryDecoder<T> decoder;
    private final TypeInformation<Decoded<T>> type;

    public DecodingDeserializer(RegistryDecoder<T> decoder, TypeInformation<Decoded<T>> type) {
        this.decoder = decoder;
        this.type = type;
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Decoded<T>> out) {
        try {
            out.collect(Decoded.of(decoder.decode(record.value()), record.partition(), record.offset(), record.key(), record.value()));
        } catch (RegistryDecoder.Failure f) {
            out.collect(Decoded.dead(new DeadLetter(record.topic(), record.partition(), record.offset(), record.key(), record.value(),
                    "decode", f.kind() + ": " + f.getMessage())));
        }
    }

    @Override
    public TypeInformation<Decoded<T>> getProducedType() {
        return type;
    }
}
