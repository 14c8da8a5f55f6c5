package io.sluice.core.avro;

import org.apache.flink.avro.registry.confluent.shaded.io.confluent.kafka.schemaregistry.client.CachedSchemaRegistryClient;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericDatumReader;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.avro.shaded.org.apache.avro.io.BinaryDecoder;
import org.apache.flink.avro.shaded.org.apache.avro.io.DecoderFactory;
import org.apache.flink.avro.shaded.org.apache.avro.io.ResolvingDecoder;
import org.apache.flink.formats.avro.registry.confluent.ConfluentSchemaRegistryCoder;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;

/**
 * Decodes Confluent wire-format bytes into a Sluice record: the writer schema is fetched by id from
 * the registry with the Confluent client Flink bundles (the same calls as Flink's
 * {@code ConfluentRegistryAvroDeserializationSchema}), once per id, and a resolving reader from that
 * writer schema to the repo's reader schema is kept per id, so a record costs one map lookup and the
 * Avro decode, with allocations bounded by the record's size ({@link BoundedDecoder}). A topic with a
 * {@link SluiceAvro.DirectReader} is read straight into its Java record through that resolving decoder; the
 * others through a {@link GenericRecord}. Bad records come back as a {@link Failure} with a reason for the dead-letter topic
 * instead of an exception, so one bad record never fails a job. A registry that cannot be reached is
 * asked again in place (no connection, a timeout, HTTP 5xx or 429; each call times out after 5 s to connect and
 * 10 s to read), backing off from 100 ms to 2 s, for up to {@link #REGISTRY_PATIENCE_MS}: a registry restart or a
 * short outage costs a pause (backpressure), not a job restart. The task takes no checkpoint while it waits, so an
 * outage longer than the checkpoint timeout expires checkpoints. After that, or on a refusal (4xx), it throws (the
 * job restarts and retries instead of dead-lettering good records). Not thread-safe: one instance per task.
 */
public final class RegistryDecoder<T> implements Serializable {
    private static final long serialVersionUID = 1L;
    /** How long a lookup retries a registry that does not answer before the task fails. */
    public static final long REGISTRY_PATIENCE_MS = 30_000;

    private final SluiceAvro<T> avro;
    private final String registryUrl;
    private transient ConfluentSchemaRegistryCoder registry;
    private transient Map<Integer, GenericDatumReader<GenericRecord>> readers;
    /** Per schema id, for a topic with a direct reader: the resolving decoder from that writer schema to the reader schema. */
    private transient Map<Integer, ResolvingDecoder> resolvers;
    private transient BinaryDecoder decoder;

    public RegistryDecoder(SluiceAvro<T> avro, String registryUrl) {
        this.avro = avro;
        this.registryUrl = registryUrl;
    }

    /** Decodes records as their writer schema has them, for a topic whose schema Sluice does not own (the Sidekiq bridge). */
    public static RegistryDecoder<GenericRecord> generic(String registryUrl) {
        return new RegistryDecoder<>(null, registryUrl);
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
        GenericDatumReader<GenericRecord> reader = reader(id, bytes);
        decoder = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, decoder);
        if (avro != null && avro.direct() != null) {
            ResolvingDecoder resolver = resolvers.get(id);
            try {
                if (resolver == null) {
                    resolver = DecoderFactory.get().resolvingDecoder(Schema.applyAliases(reader.getSchema(), avro.schema()), avro.schema(), null);
                    resolvers.put(id, resolver);
                }
                resolver.configure(new BoundedDecoder(decoder, bytes.length - 5));
                T value = avro.direct().read(resolver);
                resolver.drain();
                return value;
            } catch (IOException | RuntimeException e) {
                throw new Failure("undecodable", "schema id " + id + ": " + e.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
        GenericRecord record;
        try {
            record = reader.read(null, new BoundedDecoder(decoder, bytes.length - 5));
        } catch (IOException | RuntimeException e) {
            throw new Failure("undecodable", "schema id " + id + ": " + e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        if (avro == null) {
            @SuppressWarnings("unchecked")
            T asWritten = (T) record;
            return asWritten;
        }
        try {
            return avro.fromAvro(record);
        } catch (RuntimeException e) {
            throw new Failure("invalid", "schema id " + id + " decoded but does not map to " + avro.name() + ": " + e);
        }
    }

    private GenericDatumReader<GenericRecord> reader(int id, byte[] bytes) throws Failure {
        if (readers == null) {
            readers = new HashMap<>();
            resolvers = new HashMap<>();
            // without a configuration map the client never sets its HTTP timeouts: a registry that accepts and never
            // answers would hold the task for ever
            registry = new ConfluentSchemaRegistryCoder(new CachedSchemaRegistryClient(registryUrl, 1000,
                    Map.of("http.connect.timeout.ms", "5000", "http.read.timeout.ms", "10000")));
        }
        GenericDatumReader<GenericRecord> reader = readers.get(id);
        if (reader != null) {
            return reader;
        }
        Schema writer = null;
        long startNs = System.nanoTime();
        long backoffMs = 100;
        while (writer == null) {
            try {
                writer = registry.readSchema(new ByteArrayInputStream(bytes, 0, 5));
            } catch (IOException e) {
                String msg = String.valueOf(e.getMessage()) + (e.getCause() == null ? "" : " " + e.getCause().getMessage());
                if (msg.contains("40403") || msg.toLowerCase().contains("schema not found")) {
                    throw new Failure("unknown-schema-id", "schema id " + id + " is not in the registry");
                }
                long waitedMs = (System.nanoTime() - startNs) / 1_000_000;
                if (!worthAskingAgain(e) || waitedMs >= REGISTRY_PATIENCE_MS) { // a refusal (401, 403, a proxy's 404) will not go away
                    throw new UncheckedIOException("the schema registry at " + registryUrl + " did not answer for schema id " + id
                            + (waitedMs > 0 ? " within " + waitedMs + " ms" : ""), e);
                }
                if (backoffMs == 100) {
                    System.err.println("sluice: the schema registry at " + registryUrl + " did not answer for schema id " + id + " (" + e
                            + "); asking again for up to " + REGISTRY_PATIENCE_MS / 1000 + " s before the task fails");
                }
                try {
                    Thread.sleep(backoffMs);
                } catch (InterruptedException interrupted) { // the task is being cancelled
                    Thread.currentThread().interrupt();
                    throw new UncheckedIOException("interrupted while waiting for the schema registry at " + registryUrl, e);
                }
                backoffMs = Math.min(2_000, backoffMs * 2);
            }
        }
        try {
            reader = avro == null ? new GenericDatumReader<>(writer) : new GenericDatumReader<>(writer, avro.schema());
        } catch (RuntimeException e) {
            throw new Failure("undecodable", "schema id " + id + " cannot be read as " + (avro == null ? "written" : avro.name()) + ": " + e.getMessage());
        }
        readers.put(id, reader);
        return reader;
    }

    /**
     * A failure worth asking again: no connection, a timeout, or an HTTP 5xx or 429 from the registry; not an answer
     * that refuses (4xx).
     */
    private static boolean worthAskingAgain(IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof org.apache.flink.avro.registry.confluent.shaded.io.confluent.kafka.schemaregistry.client.rest.exceptions.RestClientException r) {
                return r.getStatus() >= 500 || r.getStatus() == 429;
            }
            if (t instanceof java.net.ConnectException || t instanceof java.net.SocketTimeoutException || t instanceof java.net.NoRouteToHostException
                    || t instanceof java.net.UnknownHostException || t instanceof java.net.SocketException) {
                return true;
            }
        }
        return false;
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
