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
}
