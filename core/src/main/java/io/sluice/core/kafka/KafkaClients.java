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

    /** The consumer group of a job: {@code <kafka.group-prefix>-<job>}. */
    public static String groupId(SluiceConfig config, String job) {
        return config.kafka().groupPrefix() + "-" + job;
    }
}
