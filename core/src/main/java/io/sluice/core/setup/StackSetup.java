package io.sluice.core.setup;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.ConfigException;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.db.ShardMigrations;
import io.sluice.core.kafka.KafkaClients;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.TopicExistsException;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;

/**
 * Brings Kafka, the registry and the shards to what Sluice expects, and is safe to run again:
 * creates missing topics ({@code campaigns} compacted; existing topics are left as they are, and
 * how they differ from configuration is reported),
 * registers each topic's schema under {@code <topic>-value} (the same schema gets the same id), and
 * applies the shard migrations. Works against the embedded stack and against real infrastructure.
 *
 * <p>In the job jar, so a deployment runs it before submitting the jobs (docker-compose's
 * {@code setup} service does): {@code java -cp sluice-jobs.jar:$FLINK_HOME/lib/* io.sluice.core.setup.StackSetup --config FILE}
 * (or {@code SLUICE_*} variables).
 */
public final class StackSetup {
    private static final ObjectMapper JSON = new ObjectMapper();

    private StackSetup() {
    }

    /**
     * What a setup run found and did; the schema ids are what producers must write. {@code topicDifferences}: how the
     * topics that already existed differ from configuration (setup leaves them as they are), one line each.
     */
    public record Result(List<String> createdTopics, List<String> topicDifferences, Map<String, Integer> schemaIds,
                         Map<Integer, List<Integer>> migrationsApplied) {
    }

    public static void main(String[] args) throws Exception {
        SluiceConfig config = SluiceConfig.fromArgs(args);
        Result r = run(config);
        System.out.println("sluice setup: topics created " + r.createdTopics() + "; schema ids " + r.schemaIds()
                + "; migrations applied per shard " + r.migrationsApplied());
        for (String d : r.topicDifferences()) {
            System.out.println("sluice setup: WARNING " + d);
        }
    }

    public static Result run(SluiceConfig config) throws Exception {
        List<String> created = createTopics(config);
        List<String> existing = new ArrayList<>(config.kafka().allTopics());
        existing.removeAll(created);
        List<String> differences;
        try (Admin admin = admin(config)) {
            differences = differences(admin, config.kafka(), existing);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof org.apache.kafka.common.errors.AuthorizationException)) {
                throw e;
            }
            // a setup account may create topics without being allowed to describe them: the comparison is advice, not a step
            differences = List.of("could not compare the existing topics with configuration: " + e.getCause().getMessage());
        }
        Map<String, Integer> ids = registerSchemas(config);
        Map<Integer, List<Integer>> migrated = new LinkedHashMap<>();
        for (SluiceConfig.Shard shard : config.shards().list()) {
            try (Connection c = shard.connect()) {
                migrated.put(shard.index(), ShardMigrations.apply(c));
            }
        }
        return new Result(created, differences, ids, migrated);
    }

    public static Admin admin(SluiceConfig config) {
        return Admin.create(KafkaClients.clientProperties(config));
    }

    static List<String> createTopics(SluiceConfig config) throws Exception {
        SluiceConfig.Kafka k = config.kafka();
        List<String> created = new ArrayList<>();
        try (Admin admin = admin(config)) {
            SluiceConfig.Kafka.TopicSettings settings = k.topicSettings();
            if (settings.minInsyncReplicas() > 0 && settings.replicationFactor() == 0) {
                checkMinInsyncAgainstTheBrokersDefault(admin, settings.minInsyncReplicas());
            }
            for (String topic : k.allTopics()) {
                NewTopic t = new NewTopic(topic, Optional.of(k.partitions()),
                        settings.replicationFactor() == 0 ? Optional.empty() : Optional.of(settings.replicationFactor()));
                Map<String, String> configs = new LinkedHashMap<>();
                if (topic.equals(k.campaignsTopic())) {
                    configs.put("cleanup.policy", "compact"); // kept for ever: the newest definition of each campaign
                } else if (settings.retentionMs() > 0) {
                    configs.put("retention.ms", String.valueOf(settings.retentionMs()));
                }
                if (settings.minInsyncReplicas() > 0) {
                    configs.put("min.insync.replicas", String.valueOf(settings.minInsyncReplicas()));
                }
                t.configs(configs);
                try {
                    admin.createTopics(List.of(t)).all().get();
                    created.add(topic);
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof InvalidReplicationFactorException || e.getCause() instanceof InvalidConfigurationException) {
                        throw new ConfigException("the brokers (" + admin.describeCluster().nodes().get().size() + " of them answer) refused to create topic "
                                + topic + " with kafka.replication-factor " + (settings.replicationFactor() == 0 ? "(their default)" : settings.replicationFactor())
                                + ", kafka.min-insync-replicas " + (settings.minInsyncReplicas() == 0 ? "(their default)" : settings.minInsyncReplicas())
                                + ", kafka.retention " + (settings.retentionMs() == 0 ? "(their default)" : settings.retentionMs() + " ms") + ": "
                                + e.getCause().getMessage() + ". The replication factor can be at most the number of brokers");
                    }
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw e;
                    }
                }
            }
        }
        return created;
    }

    /**
     * How {@code existing} topics differ from what setup would create: partitions, replication factor, and the configs
     * setup sets ({@code min.insync.replicas}, {@code retention.ms}, and compaction of {@code campaigns}). Settings left
     * to the brokers' defaults are not compared.
     */
    static List<String> differences(Admin admin, SluiceConfig.Kafka k, List<String> existing) throws Exception {
        List<String> out = new ArrayList<>();
        if (existing.isEmpty()) {
            return out;
        }
        SluiceConfig.Kafka.TopicSettings settings = k.topicSettings();
        var described = admin.describeTopics(existing).allTopicNames().get();
        List<ConfigResource> resources = existing.stream().map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t)).toList();
        var configs = admin.describeConfigs(resources).all().get();
        for (String topic : existing) {
            var t = described.get(topic);
            List<String> d = new ArrayList<>();
            if (t.partitions().size() != k.partitions()) {
                d.add(t.partitions().size() + " partitions, kafka.partitions is " + k.partitions()
                        + " (adding partitions moves keys: docs/operations.md#adding-partitions)");
            }
            int replicas = t.partitions().stream().mapToInt(p -> p.replicas().size()).min().orElse(0);
            if (settings.replicationFactor() > 0 && replicas != settings.replicationFactor()) {
                d.add("replication factor " + replicas + ", kafka.replication-factor is " + settings.replicationFactor()
                        + " (kafka-reassign-partitions.sh changes it)");
            }
            var c = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, topic));
            if (settings.minInsyncReplicas() > 0 && !String.valueOf(settings.minInsyncReplicas()).equals(c.get("min.insync.replicas").value())) {
                d.add("min.insync.replicas " + c.get("min.insync.replicas").value() + ", kafka.min-insync-replicas is " + settings.minInsyncReplicas());
            }
            if (topic.equals(k.campaignsTopic())) {
                if (!c.get("cleanup.policy").value().equals("compact")) {
                    d.add("cleanup.policy " + c.get("cleanup.policy").value() + ", not compact alone: campaign definitions expire with the retention");
                }
            } else if (settings.retentionMs() > 0 && !String.valueOf(settings.retentionMs()).equals(c.get("retention.ms").value())) {
                d.add("retention.ms " + c.get("retention.ms").value() + ", kafka.retention is " + settings.retentionMs() + " ms");
            }
            if (!d.isEmpty()) {
                out.add("topic " + topic + " exists with " + String.join("; ", d) + ". Setup leaves existing topics as they are: "
                        + "change the topic (kafka-configs.sh --alter) or the configuration");
            }
        }
        return out;
    }

    /** Refuses a min.insync.replicas over the brokers' default replication factor, which new topics then get: no write could succeed. */
    private static void checkMinInsyncAgainstTheBrokersDefault(Admin admin, int minInsync) throws Exception {
        String broker = admin.describeCluster().nodes().get().iterator().next().idString();
        var resource = new ConfigResource(ConfigResource.Type.BROKER, broker);
        var entry = admin.describeConfigs(List.of(resource)).all().get().get(resource).get("default.replication.factor");
        if (entry != null && entry.value() != null && minInsync > Integer.parseInt(entry.value())) {
            throw new ConfigException("kafka.min-insync-replicas is " + minInsync + ", over the brokers' default.replication.factor " + entry.value()
                    + " that topics get without kafka.replication-factor: every write to them (acks=all) would be refused. Set kafka.replication-factor");
        }
    }

    /** Registers the repo's schemas; returns schema id by topic. */
    public static Map<String, Integer> registerSchemas(SluiceConfig config) throws IOException, InterruptedException {
        SluiceConfig.Kafka k = config.kafka();
        Map<String, Integer> ids = new LinkedHashMap<>();
        ids.put(k.userEventsTopic(), register(config.registry().url(), k.userEventsTopic() + "-value", SluiceAvro.USER_EVENT.schemaJson()));
        ids.put(k.subscriptionUpdatesTopic(), register(config.registry().url(), k.subscriptionUpdatesTopic() + "-value", SluiceAvro.SUBSCRIPTION_UPDATE.schemaJson()));
        ids.put(k.campaignsTopic(), register(config.registry().url(), k.campaignsTopic() + "-value", SluiceAvro.CAMPAIGN.schemaJson()));
        ids.put(k.pushQueueTopic(), register(config.registry().url(), k.pushQueueTopic() + "-value", SluiceAvro.PUSH_JOB.schemaJson()));
        return ids;
    }

    /** {@code POST /subjects/{subject}/versions}, as the Confluent client does; returns the schema id. */
    public static int register(String registryUrl, String subject, String schemaJson) throws IOException, InterruptedException {
        String body = JSON.createObjectNode().put("schema", JSON.readTree(schemaJson).toString()).toString();
        HttpRequest req = HttpRequest.newBuilder(URI.create(registryUrl + "/subjects/" + subject + "/versions"))
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        HttpResponse<String> resp = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
        if (resp.statusCode() != 200) {
            throw new IOException("registering the schema for subject " + subject + " at " + registryUrl
                    + " failed with HTTP " + resp.statusCode() + ": " + resp.body());
        }
        JsonNode id = JSON.readTree(resp.body()).get("id");
        return id.asInt();
    }
}
