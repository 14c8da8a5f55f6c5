package io.sluice.core.kafka;

import io.sluice.core.config.SluiceConfig;

import java.util.Properties;

/**
 * How every Kafka client of Sluice (the jobs' sources and sinks, stack setup, the tools and the test
 * kit) is configured from {@link SluiceConfig}: {@code kafka.properties.*} plus the bootstrap servers,
 * and one consumer group name per job.
 */
public final class KafkaClients {
    private KafkaClients() {
    }

    /** The Kafka client settings from configuration ({@code kafka.properties.*}) plus the bootstrap servers. */
    public static Properties clientProperties(SluiceConfig config) {
        Properties p = new Properties();
        p.putAll(config.kafka().clientProperties());
        p.put("bootstrap.servers", config.kafka().bootstrap());
        return p;
    }

    /**
     * For the admin clients a job opens on its task threads (checks at start and at checkpoints): a broker that
     * does not answer fails the call within 15 s instead of Kafka's default minute. Keeps timeouts the user set.
     */
    public static Properties adminProperties(Properties client) {
        Properties p = new Properties();
        p.putAll(client);
        p.putIfAbsent("default.api.timeout.ms", "15000");
        p.putIfAbsent("request.timeout.ms", "10000");
        return p;
    }

    /** The consumer group of a job: {@code <kafka.group-prefix>-<job>}. */
    public static String groupId(SluiceConfig config, String job) {
        return config.kafka().groupPrefix() + "-" + job;
    }
}
