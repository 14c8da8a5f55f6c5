package io.sluice.core.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SluiceConfigTest {
    private static final String[] MINIMAL = {"--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls",
            "jdbc:postgresql://a:5432/s,jdbc:postgresql://b:5432/s"};

    private static SluiceConfig load(Map<String, String> env, String... args) {
        RawConfig raw = RawConfig.fromArgs(args, env, SluiceConfig.ALIASES);
        SluiceConfig c = SluiceConfig.from(raw);
        raw.rejectUnread();
        return c;
    }

    private static String[] with(String... more) {
        String[] all = new String[MINIMAL.length + more.length];
        System.arraycopy(MINIMAL, 0, all, 0, MINIMAL.length);
        System.arraycopy(more, 0, all, MINIMAL.length, more.length);
        return all;
    }

    @Test
    void defaultsAreSensible() {
        SluiceConfig c = load(Map.of(), MINIMAL);
        assertThat(c.kafka().partitions()).isEqualTo(12);
        assertThat(c.kafka().subscriptionUpdatesTopic()).isEqualTo("subscription-updates");
        assertThat(c.shards().list()).hasSize(2);
        assertThat(c.router().shardCount()).isEqualTo(2);
        assertThat(c.subscriptions().flushIntervalMs()).isEqualTo(200);
    }

    @Test
    void aShardUrlCarryingAPasswordIsRefusedWithoutPrintingIt() {
        assertThatThrownBy(() -> load(Map.of(), "--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls",
                "jdbc:postgresql://a:5432/s,jdbc:postgresql://b:5432/s?user=sluice&password=s3cret"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("entry 1 of shards.urls carries credentials")
                .hasMessageContaining("shards.password").hasMessageNotContaining("s3cret");
        assertThatThrownBy(() -> load(Map.of(), "--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls", "postgres://u:s3cret@a/s"))
                .isInstanceOf(ConfigException.class).hasMessageNotContaining("s3cret");
        assertThatThrownBy(() -> load(Map.of(), "--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls", "jdbc:postgresql://u:s3cret@a/s"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("entry 0 of shards.urls carries credentials").hasMessageNotContaining("s3cret");
        assertThatThrownBy(() -> load(Map.of(), "--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls",
                "jdbc:postgresql://a/s?sslmode=verify-full&sslpassword=s3cret")).hasMessageContaining("sslpassword").hasMessageNotContaining("s3cret");
        for (String notJdbc : new String[] {"postgresql+psycopg2://u:s3cret@h/db", "host=h password=s3cret dbname=d"}) {
            assertThatThrownBy(() -> load(Map.of(), "--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls", notJdbc))
                    .as(notJdbc).hasMessageContaining("jdbc:postgresql://").hasMessageNotContaining("s3cret");
        }
        SluiceConfig ok = load(Map.of(), "--bootstrap", "k:9092", "--registry", "http://r:8081", "--shard-urls",
                "jdbc:postgresql://a:5432/s?sslmode=verify-full&sslrootcert=/etc/ca@2024.pem,jdbc:postgresql://b:5432/s?ApplicationName=a@b");
        assertThat(ok.shards().list()).as("an @ in a parameter is no password").hasSize(2);
    }

    @Test
    void fileThenEnvironmentThenArgumentsWin(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("sluice.yaml");
        Files.writeString(file, """
                kafka:
                  bootstrap: from-file:9092
                  partitions: 24
                  topics:
                    user-events: ue
                registry:
                  url: http://file:8081
                shards:
                  urls:
                    - jdbc:postgresql://f0:5432/s
                    - jdbc:postgresql://f1:5432/s
                subscriptions:
                  flush-max-rows: 500
                """);
        Map<String, String> env = new HashMap<>();
        env.put("SLUICE_KAFKA_PARTITIONS", "36");
        env.put("SLUICE_SUBSCRIPTIONS_FLUSH_MAX_ROWS", "700");
        env.put("SLUICE_SHARDS_PASSWORD", "s3cret");
        SluiceConfig c = load(env, "--config", file.toString(), "--subscriptions.flush-max-rows", "900");
        assertThat(c.kafka().bootstrap()).isEqualTo("from-file:9092");
        assertThat(c.kafka().userEventsTopic()).isEqualTo("ue");
        assertThat(c.kafka().partitions()).isEqualTo(36);
        assertThat(c.subscriptions().flushMaxRows()).isEqualTo(900);
        assertThat(c.shards().list().get(1).jdbcUrl()).isEqualTo("jdbc:postgresql://f1:5432/s");
        assertThat(c.shards().list().get(0).password()).isEqualTo("s3cret");
        assertThat(c.shards().list().get(0).toString()).doesNotContain("s3cret").contains("***");
    }

    @Test
    void aBadNumberNamesKeySourceValueAndExpectation() {
        assertThatThrownBy(() -> load(Map.of(), with("--kafka.partitions", "twelve")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("config key 'kafka.partitions' (from argument --kafka.partitions) has value 'twelve': expected a whole number between 1 and 100000");
        assertThatThrownBy(() -> load(Map.of("SLUICE_AGGREGATION_PARALLELISM", "-5"), MINIMAL))
                .hasMessageContaining("'aggregation.parallelism' (from environment SLUICE_AGGREGATION_PARALLELISM) has value '-5'");
    }

    @Test
    void missingRequiredKeySaysHowToSetIt() {
        assertThatThrownBy(() -> load(Map.of(), "--registry", "http://r", "--shard-urls", "jdbc:postgresql://a/s"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'kafka.bootstrap' is missing")
                .hasMessageContaining("--kafka.bootstrap")
                .hasMessageContaining("SLUICE_KAFKA_BOOTSTRAP");
    }

    @Test
    void malformedValuesAreRejected() {
        assertThatThrownBy(() -> load(Map.of(), with("--registry", "registry:8081")))
                .hasMessageContaining("'registry.url'").hasMessageContaining("'registry:8081'").hasMessageContaining("http://");
        assertThatThrownBy(() -> load(Map.of(), with("--shard-urls", "postgres://a/s")))
                .hasMessageContaining("'shards.urls'").hasMessageContaining("jdbc:postgresql://");
        assertThatThrownBy(() -> load(Map.of(), with("--subscriptions.flush-interval", "fast")))
                .hasMessageContaining("'subscriptions.flush-interval'").hasMessageContaining("'fast'").hasMessageContaining("500ms");
        assertThatThrownBy(() -> load(Map.of(), with("--kafka.topics.push-queue", "push queue!")))
                .hasMessageContaining("'kafka.topics.push-queue'").hasMessageContaining("Kafka topic name");
        assertThatThrownBy(() -> load(Map.of(), with("--routing.bucket-map", "0-100:0")))
                .hasMessageContaining("'routing.bucket-map'").hasMessageContaining("bucket 101 is not mapped");
    }

    @Test
    void aMisspeltKeyIsAnErrorWithASuggestion() {
        assertThatThrownBy(() -> load(Map.of(), with("--kafka.partitons", "12")))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'kafka.partitons'")
                .hasMessageContaining("did you mean 'kafka.partitions'");
    }

    @Test
    void jobsRefuseToolKeys() {
        // generator settings are the test kit's (GeneratorConfig), not a job's
        assertThatThrownBy(() -> load(Map.of(), with("--generator.rate", "900")))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'generator.rate'");
    }

    @Test
    void kafkaClientPropertiesPassThrough() {
        SluiceConfig c = load(Map.of(), with("--kafka.properties.security.protocol", "SSL"));
        assertThat(c.kafka().clientProperties()).containsEntry("security.protocol", "SSL");
    }

    @Test
    void durationsTakeUnits() {
        assertThat(load(Map.of(), with("--subscriptions.flush-interval", "2s")).subscriptions().flushIntervalMs()).isEqualTo(2000);
        assertThat(load(Map.of(), with("--subscriptions.flush-interval", "150")).subscriptions().flushIntervalMs()).isEqualTo(150);
    }

    @Test
    void aMissingConfigFileIsNamed() {
        assertThatThrownBy(() -> load(Map.of(), "--config", "/nonexistent/sluice.yaml"))
                .hasMessageContaining("config file '/nonexistent/sluice.yaml'");
    }
}
