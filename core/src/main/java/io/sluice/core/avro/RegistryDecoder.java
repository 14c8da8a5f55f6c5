package io.sluice.core.avro;

import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.formats.avro.registry.confluent.ConfluentRegistryAvroDeserializationSchema;

import java.io.Serializable;

/**
 * Decodes Confluent wire-format bytes into a Sluice record with Flink's registry-aware Avro schema
 * (writer schema fetched by id from the registry and cached, resolved against the repo's reader
 * schema). Failures come back as a {@link Failure} with a reason for the dead-letter topic instead of
 * an exception, so one bad record never fails a job.
 */
public final class RegistryDecoder<T> implements Serializable {
    private static final long serialVersionUID = 1L;

    private final SluiceAvro<T> avro;
    private final String registryUrl;
    private transient ConfluentRegistryAvroDeserializationSchema<GenericRecord> schema;

    public RegistryDecoder(SluiceAvro<T> avro, String registryUrl) {
        this.avro = avro;
        this.registryUrl = registryUrl;
    }

    /** Returns the record, or throws {@link Failure} whose message is the dead-letter reason. */
    public T decode(byte[] bytes) throws Failure {
        if (bytes == null || bytes.length == 0) {
            throw new Failure("empty-value", "record has no value");
        }
        int id = ConfluentWire.schemaIdOf(bytes);
        if (id < 0) {
            throw new Failure("not-wire-format", "value does not start with the Confluent magic byte 0 and a 4-byte schema id");
        }
        if (schema == null) {
            schema = ConfluentRegistryAvroDeserializationSchema.forGeneric(avro.schema(), registryUrl);
        }
        GenericRecord record;
        try {
            record = schema.deserialize(bytes);
        } catch (Exception e) {
            String msg = String.valueOf(e.getMessage());
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            String rootMsg = String.valueOf(root.getMessage());
            if (rootMsg.contains("40403") || rootMsg.toLowerCase().contains("schema not found") || msg.contains("40403")) {
                throw new Failure("unknown-schema-id", "schema id " + id + " is not in the registry");
            }
            throw new Failure("undecodable", "schema id " + id + ": " + root.getClass().getSimpleName() + ": " + rootMsg);
        }
        try {
            return avro.fromAvro(record);
        } catch (RuntimeException e) {
            throw new Failure("invalid", "schema id " + id + " decoded but does not map to " + avro.name() + ": " + e);
        }
    }

    /** Why a record could not be decoded: {@code kind} is a short stable label, the message the detail. */
    public static final class Failure extends Exception {
        private final String kind;

        public Failure(String kind, String message) {
            super(message, null, false, false);
            this.kind = kind;
        }

        public String kind() {
            return kind;
        }
    }
}
