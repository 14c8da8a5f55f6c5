package io.sluice.jobs.common;

import io.sluice.core.config.ConfigException;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.kafka.KafkaClients;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacetProvider;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.TransactionNamingStrategy;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.config.ConfigResource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** The Kafka sources and sinks every job builds the same way from {@link SluiceConfig}. */
public final class KafkaIo {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaIo.class);

    private KafkaIo() {
    }

    /**
     * A source for {@code topic} in consumer group {@code <group-prefix>-<job>} (offsets committed on
     * checkpoints, so message lag is visible to Kafka tools); starts from the committed offsets, or the
     * earliest when there are none. Reads {@code read_committed}, so records of aborted upstream transactions are
     * never applied; new partitions are discovered every {@code kafka.partition-discovery-interval}.
     * {@code bounded} stops at the offsets that exist at start (tests, benchmarks).
     */
    public static <T> KafkaSource<T> source(SluiceConfig config, String job, String topic, KafkaRecordDeserializationSchema<T> deserializer, boolean bounded) {
        return source(config, job, topic, deserializer, committedOrEarliest(), bounded);
    }

    /** Where a job without state starts: its consumer group's committed offsets, the earliest where there are none. */
    public static OffsetsInitializer committedOrEarliest() {
        return OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST);
    }

    /** As {@link #source(SluiceConfig, String, String, KafkaRecordDeserializationSchema, boolean)}, from {@code starting}. */
    public static <T> KafkaSource<T> source(SluiceConfig config, String job, String topic, KafkaRecordDeserializationSchema<T> deserializer,
                                            OffsetsInitializer starting, boolean bounded) {
        return source(config, job, topic, deserializer, starting, bounded, 0);
    }

    /**
     * As {@link #source(SluiceConfig, String, String, KafkaRecordDeserializationSchema, OffsetsInitializer, boolean)}, fetching at
     * most {@code maxPartitionFetchBytes} of a partition at a time ({@code max.partition.fetch.bytes}, over
     * {@code kafka.properties.*}); 0 leaves it to the consumer (1 MiB).
     */
    public static <T> KafkaSource<T> source(SluiceConfig config, String job, String topic, KafkaRecordDeserializationSchema<T> deserializer,
                                            OffsetsInitializer starting, boolean bounded, int maxPartitionFetchBytes) {
        KafkaSourceBuilder<T> b = KafkaSource.<T>builder()
                .setBootstrapServers(config.kafka().bootstrap())
                .setTopics(topic)
                .setGroupId(KafkaClients.groupId(config, job))
                .setStartingOffsets(starting)
                .setDeserializer(deserializer)
                .setProperties(KafkaClients.clientProperties(config))
                .setProperty("isolation.level", "read_committed")
                .setProperty("partition.discovery.interval.ms", String.valueOf(config.kafka().partitionDiscoveryMs()));
        if (maxPartitionFetchBytes > 0) {
            b.setProperty("max.partition.fetch.bytes", String.valueOf(maxPartitionFetchBytes));
        }
        if (bounded) {
            b.setBounded(OffsetsInitializer.latest());
        }
        return b.build();
    }

    /**
     * A transactional sink: records become visible to {@code read_committed} consumers when the
     * checkpoint that covers them completes, so each appears exactly once across restarts. Transaction
     * ids are {@code <transactionalIdPrefix>-<subtask>-<n>}, named by the connector's POOLING strategy: ids
     * are reused, so the brokers keep a few per subtask instead of one per checkpoint for
     * {@code transactional.id.expiration.ms} (7 days; with INCREMENTING, 1 s checkpoints made 86,400 a day per
     * subtask); lingering ones are found by listing the transactions of the prefix, which needs the serializer
     * to name its topic ({@code KafkaDatasetFacetProvider}). Savepoints of INCREMENTING builds restore into it.
     * The transaction timeout is {@code kafka.transaction-timeout} (at most the brokers'
     * {@code transaction.max.timeout.ms}). The connector's writer leaves an admin client open, and its committer leaves
     * open a transaction FLINK-40626 orphans at a restore: {@link AdminClosingKafkaSink} closes the one and aborts the other.
     */
    public static <T, S extends KafkaRecordSerializationSchema<T> & KafkaDatasetFacetProvider> Sink<T> exactlyOnceSink(
            SluiceConfig config, S serializer, String transactionalIdPrefix) {
        Properties p = KafkaClients.clientProperties(config);
        p.put("transaction.timeout.ms", String.valueOf(config.kafka().transactionTimeoutMs()));
        return new AdminClosingKafkaSink<>(KafkaSink.<T>builder()
                .setBootstrapServers(config.kafka().bootstrap())
                .setKafkaProducerConfig(p)
                .setRecordSerializer(serializer)
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(transactionalIdPrefix)
                .setTransactionNamingStrategy(TransactionNamingStrategy.POOLING)
                .build(), p);
    }

    /**
     * Refuses a {@code kafka.transaction-timeout} over the brokers' {@code transaction.max.timeout.ms}, which every
     * transactional producer of the job would be refused at start, again after every restart. Run where the job is
     * built for submission; a broker that does not answer within 15 s is not a reason to refuse (the sink will say).
     */
    public static void checkTransactionTimeout(SluiceConfig config) {
        Optional<String> max = describedConfig(KafkaClients.clientProperties(config), admin -> {
            try {
                Node node = admin.describeCluster().nodes().get(15, TimeUnit.SECONDS).iterator().next();
                return new ConfigResource(ConfigResource.Type.BROKER, node.idString());
            } catch (Exception e) {
                throw new IllegalStateException("the brokers did not describe the cluster", e);
            }
        }, "transaction.max.timeout.ms", "kafka.transaction-timeout is not checked");
        if (max.isEmpty()) {
            return;
        }
        long brokerMax = Long.parseLong(max.get());
        if (config.kafka().transactionTimeoutMs() > brokerMax) {
            throw new ConfigException("kafka.transaction-timeout is " + config.kafka().transactionTimeoutMs() + " ms, over the brokers' "
                    + "transaction.max.timeout.ms of " + brokerMax + " ms: every push-queue producer would be refused. Lower the key, or raise "
                    + "the brokers' setting (docs/aggregation.md, the exactly-once push queue)");
        }
    }

    /**
     * One config value the brokers report for a resource ({@code resource} may ask the admin client to name it, e.g. a
     * broker id), through an admin client with {@link KafkaClients#adminProperties}; empty when they have none or do not answer
     * within 15 s, which is logged as a warning saying what {@code purpose} goes without it.
     */
    static Optional<String> describedConfig(Properties client, Function<Admin, ConfigResource> resource, String key, String purpose) {
        try (Admin admin = Admin.create(KafkaClients.adminProperties(client))) {
            ConfigResource r = resource.apply(admin);
            ConfigEntry e = admin.describeConfigs(List.of(r)).all().get(15, TimeUnit.SECONDS).get(r).get(key);
            return e == null ? Optional.empty() : Optional.ofNullable(e.value());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } catch (Exception e) {
            LOG.warn("could not read {} from the brokers; {}: {}", key, purpose, e.toString());
            return Optional.empty();
        }
    }

    /** The dead-letter sink; at-least-once, so a dead letter is never lost (a restart may repeat one). */
    public static KafkaSink<DeadLetter> deadLetterSink(SluiceConfig config) {
        return KafkaSink.<DeadLetter>builder()
                .setBootstrapServers(config.kafka().bootstrap())
                .setKafkaProducerConfig(KafkaClients.clientProperties(config))
                .setRecordSerializer(new DeadLetterSerializer(config.kafka().deadLettersTopic(), KafkaClients.clientProperties(config)))
                .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                .build();
    }
}
