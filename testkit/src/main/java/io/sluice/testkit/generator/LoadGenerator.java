package io.sluice.testkit.generator;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.kafka.KafkaClients;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Produces a {@link RecordSequence} to Kafka at a fixed rate: record {@code i} is sent no earlier
 * than {@code start + i / rate} (a token bucket holding one millisecond of tokens, so the load is
 * even, not bursts), or as fast as the broker takes them with {@code rate = 0} (pre-filling a topic
 * for a benchmark). Runs on its own thread until {@code generator.count} records (0 = no limit: until
 * {@link #stop()}) or {@link #close()}. Counts are of records the broker acknowledged.
 */
public final class LoadGenerator implements AutoCloseable {
    private final RecordSequence sequence;
    private final KafkaProducer<byte[], byte[]> producer;
    private final double rate;
    private final long count;
    private final Oracle oracle;
    private final AtomicLong acked = new AtomicLong();
    private final Map<String, AtomicLong> ackedByTopic = new ConcurrentHashMap<>();
    private final AtomicReference<Exception> failure = new AtomicReference<>();
    private final Thread thread;
    private volatile boolean running = true;
    private volatile long sent;

    /**
     * @param rate records per second, or 0 for as fast as possible
     * @param epochMs the event time of the first record
     * @param keepRecords the oracle also keeps every well-formed event and update it saw (tests that compare record by record)
     */
    public LoadGenerator(SluiceConfig config, GeneratorConfig generator, Map<String, Integer> schemaIds, double rate, long epochMs, boolean keepRecords) {
        this.oracle = new Oracle(keepRecords, keepRecords);
        this.sequence = new RecordSequence(config, generator, schemaIds, epochMs, oracle);
        this.rate = rate;
        this.count = generator.count();
        Properties p = KafkaClients.clientProperties(config);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "131072");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        this.producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
        this.thread = new Thread(this::run, "sluice-load-generator");
        this.thread.setDaemon(true);
    }

    public LoadGenerator start() {
        thread.start();
        return this;
    }

    private void run() {
        long start = System.nanoTime();
        double nanosPerRecord = rate > 0 ? 1e9 / rate : 0;
        try {
            long i = 0;
            // a run ends between records the oracle has: a hot-key burst is in it whole once it began
            while (sequence.hasPending() || running && (count == 0 || sequence.index() < count)) {
                if (rate > 0) {
                    long due = start + (long) (i * nanosPerRecord);
                    long wait = due - System.nanoTime();
                    if (wait > 1_000_000) {
                        LockSupport.parkNanos(wait);
                    }
                }
                GeneratedRecord r = sequence.next();
                AtomicLong topicCount = ackedByTopic.computeIfAbsent(r.topic(), t -> new AtomicLong());
                producer.send(new ProducerRecord<>(r.topic(), r.key(), r.value()), (md, e) -> {
                    if (e != null) {
                        failure.compareAndSet(null, e);
                    } else {
                        acked.incrementAndGet();
                        topicCount.incrementAndGet();
                    }
                });
                sent = ++i;
            }
            producer.flush();
        } catch (Exception e) {
            failure.compareAndSet(null, e);
        } finally {
            running = false;
        }
    }

    /** Waits for a bounded run to be produced and acknowledged (a run with no limit: for ever); rethrows a produce failure. */
    public LoadGenerator awaitDone() throws Exception {
        thread.join();
        if (failure.get() != null) {
            throw failure.get();
        }
        return this;
    }

    /**
     * Ends a run ({@code generator.count} 0 runs until this) once the rest of a hot-key burst that began is sent (at the
     * rate) and what was sent is acknowledged; rethrows a produce failure.
     */
    public LoadGenerator stop() throws Exception {
        running = false;
        return awaitDone();
    }

    public boolean isRunning() {
        return running;
    }

    public long acked() {
        return acked.get();
    }

    public long acked(String topic) {
        AtomicLong n = ackedByTopic.get(topic);
        return n == null ? 0 : n.get();
    }

    public long sent() {
        return sent;
    }

    public Exception failure() {
        return failure.get();
    }

    /** Valid after {@link #awaitDone()}, {@link #stop()} or {@link #close()}. */
    public Oracle oracle() {
        return oracle;
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        thread.join(30_000);
        producer.close();
    }
}
