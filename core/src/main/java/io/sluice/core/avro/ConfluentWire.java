package io.sluice.core.avro;

import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericDatumWriter;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.avro.shaded.org.apache.avro.io.BinaryEncoder;
import org.apache.flink.avro.shaded.org.apache.avro.io.EncoderFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * Writes the Confluent wire format: magic byte 0, the 4-byte big-endian schema id, then Avro binary.
 * Used by the load generator, which registers its schemas once and then encodes at full speed. The jobs
 * read the same bytes with {@link RegistryDecoder} and write the push queue with Flink's
 * {@code ConfluentRegistryAvroSerializationSchema}.
 */
public final class ConfluentWire {
    public static final byte MAGIC = 0;

    private final int schemaId;
    private final GenericDatumWriter<GenericRecord> writer;
    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream(256);
    private BinaryEncoder encoder;

    public ConfluentWire(int schemaId, Schema schema) {
        this.schemaId = schemaId;
        this.writer = new GenericDatumWriter<>(schema);
    }

    /** Not thread-safe: one instance per producing thread. */
    public byte[] encode(GenericRecord record) {
        buffer.reset();
        buffer.write(MAGIC);
        buffer.write(schemaId >>> 24);
        buffer.write(schemaId >>> 16);
        buffer.write(schemaId >>> 8);
        buffer.write(schemaId);
        encoder = EncoderFactory.get().directBinaryEncoder(buffer, encoder);
        try {
            writer.write(record, encoder);
            encoder.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return buffer.toByteArray();
    }

    /** The schema id of a wire-format record, or -1 if the bytes are not in that format. */
    public static int schemaIdOf(byte[] bytes) {
        if (bytes == null || bytes.length < 5 || bytes[0] != MAGIC) {
            return -1;
        }
        return ((bytes[1] & 0xff) << 24) | ((bytes[2] & 0xff) << 16) | ((bytes[3] & 0xff) << 8) | (bytes[4] & 0xff);
    }
}
