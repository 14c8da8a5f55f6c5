package io.sluice.testkit;

import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import io.sluice.core.setup.StackSetup;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.ResultSet;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(SluiceStackExtension.class)
class StackSetupITCase {
    @Test
    void runningSetupAgainChangesNothing(TestStack stack) throws Exception {
        // the kit already ran setup once for this topic set
        StackSetup.Result again = StackSetup.run(stack.config());
        assertThat(again.createdTopics()).isEmpty();
        assertThat(again.schemaIds()).isEqualTo(stack.schemaIds());
        assertThat(again.migrationsApplied().values()).allSatisfy(v -> assertThat(v).isEmpty());

        try (Admin admin = StackSetup.admin(stack.config())) {
            var topics = admin.describeTopics(stack.config().kafka().allTopics()).allTopicNames().get();
            assertThat(topics).hasSize(5);
            assertThat(topics.values()).allSatisfy(t -> assertThat(t.partitions()).hasSize(4));
            var campaigns = new ConfigResource(ConfigResource.Type.TOPIC, stack.config().kafka().campaignsTopic());
            assertThat(admin.describeConfigs(List.of(campaigns)).all().get().get(campaigns).get("cleanup.policy").value()).isEqualTo("compact");
        }
        for (int shard = 0; shard < SluiceStackExtension.SHARDS; shard++) {
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")) {
                List<String> tables = new java.util.ArrayList<>();
                while (rs.next()) {
                    tables.add(rs.getString(1));
                }
                assertThat(tables).containsExactly("app_hourly_summary", "sluice_partition_progress", "sluice_progress", "sluice_routing",
                        "sluice_schema_version", "sluice_sources", "subscriptions", "subscriptions_text", "user_event_counts");
            }
            try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery("SHOW max_prepared_transactions")) {
                rs.next();
                assertThat(rs.getInt(1)).isZero();
            }
        }
    }

    @Test
    void aFirstRunCreatesEverything(TestStack stack) throws Exception {
        // a fresh topic set from the kit: the first setup created all five topics and versions 1 to 3 on both shards
        try (Connection c = stack.shard(1); ResultSet rs = c.createStatement().executeQuery("SELECT version FROM sluice_schema_version ORDER BY 1")) {
            List<Integer> versions = new java.util.ArrayList<>();
            while (rs.next()) {
                versions.add(rs.getInt(1));
            }
            assertThat(versions).containsExactly(1, 2, 3);
        }
        assertThat(stack.schemaIds()).containsOnlyKeys(stack.config().kafka().userEventsTopic(), stack.config().kafka().subscriptionUpdatesTopic(),
                stack.config().kafka().campaignsTopic(), stack.config().kafka().pushQueueTopic());
    }

    /**
     * Replication factor, min.insync.replicas and retention of the created topics come from configuration; unset, they are
     * the brokers' own (no topic-level override; the kit's one broker defaults to a replication factor of 1). More replicas
     * than brokers is refused naming the key.
     */
    @Test
    void topicDurabilityComesFromConfigurationAndDefaultsToTheBrokers(TestStack base) throws Exception {
        TestStack plain = base.fresh(java.util.Map.of());
        try (Admin admin = StackSetup.admin(plain.config())) {
            for (String topic : plain.config().kafka().allTopics()) {
                var r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                var configs = admin.describeConfigs(List.of(r)).all().get().get(r);
                assertThat(configs.get("min.insync.replicas").source()).as(topic + " min.insync.replicas").isNotEqualTo(DYNAMIC_TOPIC_CONFIG);
                assertThat(configs.get("retention.ms").source()).as(topic + " retention.ms").isNotEqualTo(DYNAMIC_TOPIC_CONFIG);
            }
        }
        TestStack set = base.fresh(java.util.Map.of("kafka.replication-factor", "1", "kafka.min-insync-replicas", "1", "kafka.retention", "3d"));
        try (Admin admin = StackSetup.admin(set.config())) {
            var k = set.config().kafka();
            var topics = admin.describeTopics(k.allTopics()).allTopicNames().get();
            assertThat(topics.values()).allSatisfy(t -> assertThat(t.partitions()).allSatisfy(p -> assertThat(p.replicas()).hasSize(1)));
            for (String topic : k.allTopics()) {
                var r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                var configs = admin.describeConfigs(List.of(r)).all().get().get(r);
                assertThat(configs.get("min.insync.replicas").value()).as(topic + " min.insync.replicas").isEqualTo("1");
                assertThat(configs.get("min.insync.replicas").source()).as(topic).isEqualTo(DYNAMIC_TOPIC_CONFIG);
                if (topic.equals(k.campaignsTopic())) {
                    assertThat(configs.get("cleanup.policy").value()).isEqualTo("compact");
                    assertThat(configs.get("retention.ms").source()).as("campaigns keeps the brokers' retention: it is compacted").isNotEqualTo(DYNAMIC_TOPIC_CONFIG);
                } else {
                    assertThat(configs.get("retention.ms").value()).as(topic + " retention.ms").isEqualTo(String.valueOf(3 * 86_400_000L));
                }
            }
        }
        // run again with other settings: the existing topics stay as they are, and every difference is reported
        StackSetup.Result again = StackSetup.run(set.with(java.util.Map.of("kafka.partitions", "3", "kafka.min-insync-replicas", "0",
                "kafka.retention", "2d")).config());
        assertThat(again.createdTopics()).isEmpty();
        var k = set.config().kafka();
        assertThat(again.topicDifferences()).hasSize(k.allTopics().size());
        assertThat(again.topicDifferences()).filteredOn(d -> d.startsWith("topic " + k.userEventsTopic() + " ")).singleElement().asString()
                .contains(k.partitions() + " partitions, kafka.partitions is 3").contains("retention.ms 259200000, kafka.retention is 172800000 ms")
                .doesNotContain("min.insync.replicas").endsWith("change the topic (kafka-configs.sh --alter) or the configuration");
        assertThat(again.topicDifferences()).filteredOn(d -> d.startsWith("topic " + k.campaignsTopic() + " ")).singleElement().asString()
                .doesNotContain("retention");
        assertThat(StackSetup.run(set.config()).topicDifferences()).as("with the settings they were created with").isEmpty();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> base.fresh(java.util.Map.of("kafka.replication-factor", "3")))
                .hasStackTraceContaining("kafka.replication-factor 3").hasStackTraceContaining("at most the number of brokers");
        // a min.insync.replicas no write could meet: over the replication factor given, or over the brokers' default one
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> base.fresh(java.util.Map.of("kafka.replication-factor", "1", "kafka.min-insync-replicas", "2")))
                .hasStackTraceContaining("kafka.min-insync-replicas is 2, over kafka.replication-factor 1");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> base.fresh(java.util.Map.of("kafka.min-insync-replicas", "2")))
                .hasStackTraceContaining("over the brokers' default.replication.factor 1");
    }

    private static final org.apache.kafka.clients.admin.ConfigEntry.ConfigSource DYNAMIC_TOPIC_CONFIG =
            org.apache.kafka.clients.admin.ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG;
}
