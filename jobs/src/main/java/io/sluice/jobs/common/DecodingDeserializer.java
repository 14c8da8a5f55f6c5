package io.sluice.jobs.common;

import io.sluice.core.avro.RegistryDecoder;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;

import java.io.Serializable;

/**
 * Kafka source deserializer: decodes Confluent wire-format Avro with {@link RegistryDecoder}; what
 * cannot be decoded becomes a {@link DeadLetter} (stage {@code decode}) instead of failing the job.
 * An optional {@link Check} runs on each decoded value in the source, before its timestamp is
 * assigned: what it refuses is a dead letter (stage {@code validate}) that never reaches a watermark.
 */
public final class DecodingDeserializer<T> implements KafkaRecordDeserializationSchema<Decoded<T>> {
    private final RegistryDecoder<T> decoder;
    private final TypeInformation<Decoded<T>> type;
    private final Check<T> check;

    /** A test of a decoded value: the problem, or null when it may go on. */
    @FunctionalInterface
    public interface Check<T> extends Serializable {
        String problem(T value);
    }

    public DecodingDeserializer(RegistryDecoder<T> decoder, TypeInformation<Decoded<T>> type) {
        this(decoder, type, v -> null);
    }

    public DecodingDeserializer(RegistryDecoder<T> decoder, TypeInformation<Decoded<T>> type, Check<T> check) {
        this.decoder = decoder;
        this.type = type;
        this.check = check;
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Decoded<T>> out) {
        try {
            T value = decoder.decode(record.value());
            String problem = check.problem(value);
            if (problem != null) {
                out.collect(Decoded.dead(new DeadLetter(record.topic(), record.partition(), record.offset(), record.key(), record.value(),
                        "validate", problem)));
                return;
            }
            out.collect(Decoded.of(value, record.partition(), record.offset(), record.key(), record.value()));
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
