package io.sluice.local;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.SluiceJob;
import io.sluice.jobs.SluiceJobs;
import org.apache.flink.configuration.Configuration;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.yaml.snakeyaml.Yaml;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.Reader;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code docker-compose.yml} cannot be started here (no Docker engine), so this reads it and checks
 * it against what it must agree with: image tags against the pom's versions, published ports against
 * {@code flink-conf/config.yaml}, volumes against the repository and the build's outputs, the
 * {@code SLUICE_*} variables against the keys Sluice reads, and the setup service against the jobs
 * the jar ships.
 */
class DockerComposeTest {
    private static final Path ROOT = Path.of("../..");
    private final Map<String, Object> compose = load();
    private final Map<String, Map<String, Object>> services = cast(compose.get("services"));
    private final Map<String, String> pom = pomProperties();
    private final Configuration flinkConf = LocalFlink.clusterConfig();
    private static final List<String> BROKERS = List.of("kafka-1", "kafka-2", "kafka-3");

    @Test
    void hasEveryServiceTheDeploymentNeeds() {
        assertThat(services).containsOnlyKeys("kafka-1", "kafka-2", "kafka-3", "schema-registry", "postgres-0", "postgres-1", "jobmanager",
                "taskmanager", "sql-gateway", "setup");
        assertThat(string(services.get("jobmanager").get("command"))).isEqualTo("jobmanager");
        assertThat(string(services.get("taskmanager").get("command"))).isEqualTo("taskmanager");
        assertThat(string(services.get("sql-gateway").get("command"))).contains("sql-gateway.sh").contains("start-foreground");
        for (String broker : BROKERS) {
            assertThat(env(broker).get("KAFKA_PROCESS_ROLES")).as(broker + ": KRaft, no ZooKeeper").isEqualTo("broker,controller");
        }
    }

    /**
     * Three brokers, one KRaft quorum: distinct node ids, each a voter, one cluster id; every topic Sluice creates has 3
     * replicas and needs 2 in sync (as do the brokers' own offsets and transaction logs), so one broker can be lost.
     */
    @Test
    void threeBrokersReplicateEveryTopicThreeTimesAndNeedTwo() {
        Set<String> ids = new TreeSet<>();
        for (String broker : BROKERS) {
            Map<String, String> e = env(broker);
            ids.add(e.get("KAFKA_NODE_ID"));
            assertThat(e.get("KAFKA_CONTROLLER_QUORUM_VOTERS")).as(broker + " is a voter").contains(e.get("KAFKA_NODE_ID") + "@" + broker + ":9093");
            assertThat(e.get("CLUSTER_ID")).isEqualTo(env("kafka-1").get("CLUSTER_ID"));
            assertThat(e.get("KAFKA_DEFAULT_REPLICATION_FACTOR")).isEqualTo("3");
            assertThat(e.get("KAFKA_MIN_INSYNC_REPLICAS")).isEqualTo("2");
            assertThat(e.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR")).isEqualTo("3");
            assertThat(e.get("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR")).isEqualTo("3");
            assertThat(e.get("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR")).isEqualTo("2");
        }
        assertThat(ids).containsExactly("1", "2", "3");
        SluiceConfig config = setupConfig();
        assertThat(config.kafka().topicSettings().replicationFactor()).as("kafka.replication-factor of the setup service").isEqualTo((short) 3);
        assertThat(config.kafka().topicSettings().minInsyncReplicas()).as("kafka.min-insync-replicas of the setup service").isEqualTo(2);
    }

    @Test
    void imageTagsAreThePomsVersions() {
        String flink = "flink:" + pom.get("flink.version") + "-java" + pom.get("maven.compiler.release");
        for (String s : List.of("jobmanager", "taskmanager", "sql-gateway", "setup")) {
            assertThat(services.get(s).get("image")).as(s + " image").isEqualTo(flink);
        }
        for (String broker : BROKERS) {
            assertThat(services.get(broker).get("image")).as(broker).isEqualTo("apache/kafka:" + pom.get("kafka.version"));
        }
        assertThat(services.get("schema-registry").get("image")).isEqualTo("confluentinc/cp-schema-registry:" + pom.get("confluent.version"));
        String pg = pom.get("postgres.server.version");
        for (String s : List.of("postgres-0", "postgres-1")) {
            assertThat(services.get(s).get("image")).as(s + " image: the server the tests run").isEqualTo("postgres:" + pg.substring(0, pg.lastIndexOf('.')));
        }
    }

    @Test
    void portsAreTheOnesFlinkConfAndSluiceUse() {
        assertThat(containerPorts("jobmanager")).as("web UI / REST (rest.port) and Prometheus (metrics.reporter.prom.port)")
                .contains(flinkConf.toMap().get("rest.port"), flinkConf.toMap().get("metrics.reporter.prom.port").split("-")[0]);
        assertThat(containerPorts("taskmanager")).contains(flinkConf.toMap().get("metrics.reporter.prom.port").split("-")[0]);
        Map<String, String> setup = env("setup");
        // kafka.bootstrap lists a listener each broker advertises
        List<String> bootstrap = List.of(setup.get("SLUICE_KAFKA_BOOTSTRAP").split(","));
        assertThat(bootstrap).hasSize(BROKERS.size());
        for (int i = 0; i < BROKERS.size(); i++) {
            assertThat(env(BROKERS.get(i)).get("KAFKA_ADVERTISED_LISTENERS")).contains("//" + bootstrap.get(i));
        }
        // registry.url is the registry's service and its listener port
        URI registry = URI.create(setup.get("SLUICE_REGISTRY_URL"));
        assertThat(registry.getHost()).isEqualTo("schema-registry");
        assertThat(env("schema-registry").get("SCHEMA_REGISTRY_LISTENERS")).endsWith(":" + registry.getPort());
        // each shard URL names a postgres service, its port inside the network and its database
        String[] urls = setup.get("SLUICE_SHARDS_URLS").split(",");
        assertThat(urls).hasSize(2);
        for (int i = 0; i < urls.length; i++) {
            URI u = URI.create(urls[i].substring("jdbc:".length()));
            assertThat(u.getHost()).isEqualTo("postgres-" + i);
            assertThat(containerPorts("postgres-" + i)).contains(String.valueOf(u.getPort()));
            assertThat(u.getPath()).isEqualTo("/" + env("postgres-" + i).get("POSTGRES_DB"));
            assertThat(env("postgres-" + i).get("POSTGRES_USER")).isEqualTo(setup.get("SLUICE_SHARDS_USER"));
        }
        List<String> hostPorts = new ArrayList<>();
        services.forEach((name, s) -> list(s.get("ports")).forEach(p -> hostPorts.add(p.split(":")[0])));
        assertThat(hostPorts).as("host ports").doesNotHaveDuplicates();
    }

    @Test
    void volumesAreInTheRepositoryOrBuiltByThePom() throws Exception {
        Set<String> hostPaths = new TreeSet<>();
        services.forEach((name, s) -> list(s.get("volumes")).stream().filter(v -> v.startsWith("./")).forEach(v -> hostPaths.add(v.split(":")[0])));
        assertThat(hostPaths).containsExactlyInAnyOrder("./flink-conf", "./jobs/target/sluice-jobs.jar", "./udfs/target/sluice-udfs.jar");
        assertThat(ROOT.resolve("flink-conf/config.yaml")).exists();
        assertThat(Files.readString(ROOT.resolve("jobs/pom.xml"))).contains("<outputFile>${project.build.directory}/sluice-jobs.jar</outputFile>");
        assertThat(Files.readString(ROOT.resolve("udfs/pom.xml"))).contains("sluice-udfs.jar");
        // checkpoints and savepoints of flink-conf live on the volume the JobManager and TaskManager share, outside /tmp,
        // owned by the user Flink runs as
        for (String s : List.of("jobmanager", "taskmanager")) {
            assertThat(list(services.get(s).get("volumes"))).contains("checkpoints:/var/lib/sluice");
            assertThat(String.join(" ", list(services.get(s).get("entrypoint")))).contains("chown flink:flink /var/lib/sluice &&");
        }
        assertThat(flinkConf.toMap().get("execution.checkpointing.dir")).startsWith("file:///var/lib/sluice/");
        assertThat(flinkConf.toMap().get("execution.checkpointing.savepoint-dir")).startsWith("file:///var/lib/sluice/");
        assertThat(DockerComposeTest.<Map<String, Object>>cast(compose.get("volumes"))).containsKeys("checkpoints", "shard-0", "shard-1");
    }

    @Test
    void everySluiceVariableIsAKeySluiceReadsAndTheConfigurationIsValid() {
        Map<String, String> env = setupEnvironment();
        assertThat(env.get("SLUICE_SHARDS_PASSWORD")).as("the password comes from the environment, not the file").isEqualTo("secret-from-the-environment");
        RawConfig raw = RawConfig.fromArgs(new String[0], env, SluiceConfig.ALIASES);
        SluiceConfig config = SluiceConfig.from(raw);
        raw.rejectUnread();
        Set<String> read = new TreeSet<>();
        raw.sources().forEach((key, source) -> {
            if (source.startsWith("environment ")) {
                read.add(source.substring("environment ".length()));
            }
        });
        Set<String> given = new TreeSet<>(env.keySet());
        given.removeIf(k -> !k.startsWith(RawConfig.ENV_PREFIX));
        assertThat(read).as("SLUICE_* variables Sluice read").isEqualTo(given);
        assertThat(config.kafka().partitions()).isEqualTo(720);
        assertThat(config.deployment().id()).as("compose names its deployment, so the jobs do not start on the shared defaults").isEqualTo("compose");
        assertThat(config.deployment().problem()).isEmpty();
        for (String broker : BROKERS) {
            assertThat(Long.parseLong(env(broker).get("KAFKA_TRANSACTION_MAX_TIMEOUT_MS"))).as(broker + " allows the push-queue's transactions")
                    .isGreaterThanOrEqualTo(config.kafka().transactionTimeoutMs());
        }
    }

    @Test
    void flinkPropertiesOnlyOverrideAddressesThatFlinkConfSets() {
        for (String s : List.of("jobmanager", "taskmanager", "sql-gateway", "setup")) {
            for (String line : env(s).get("FLINK_PROPERTIES").strip().split("\n")) {
                String key = line.substring(0, line.indexOf(':')).strip();
                assertThat(flinkConf.toMap()).as(s + " overrides " + key).containsKey(key);
            }
        }
    }

    @Test
    void setupCreatesWhatTheJobsNeedAndSubmitsEveryJobTheJarShips() throws Exception {
        String command = String.join(" ", list(services.get("setup").get("command")));
        assertThat(command).contains(io.sluice.core.setup.StackSetup.class.getName());
        Class.forName(io.sluice.core.setup.StackSetup.class.getName()).getMethod("main", String[].class);
        List<String> submitted = new ArrayList<>();
        Matcher m = Pattern.compile("flink run -d .*?-c (\\S+) /opt/sluice/sluice-jobs.jar").matcher(command);
        while (m.find()) {
            submitted.add(m.group(1));
        }
        assertThat(submitted).isEqualTo(SluiceJobs.all().stream().map(SluiceJob::getClass).map(Class::getName).toList());
        // each submission only if no job of that name is running or scheduled (a re-run would otherwise run it twice)
        assertThat(command).contains("set -e").contains("jobs=$$(flink list -r -s -Drest.address=jobmanager)");
        for (SluiceJob job : SluiceJobs.all()) {
            assertThat(command).contains("echo \"$$jobs\" | grep -qF ' : sluice-" + job.name() + " (' && echo 'setup: sluice-" + job.name()
                    + " is running; not submitted again' \\\n  || flink run -d -Drest.address=jobmanager -c " + job.getClass().getName() + " ");
        }
        assertThat(list(services.get("setup").get("volumes"))).contains("./jobs/target/sluice-jobs.jar:/opt/sluice/sluice-jobs.jar:ro");
    }

    /** The setup service's environment as compose passes it: {@code ${VAR:-default}} its default, the password given. */
    private Map<String, String> setupEnvironment() {
        Map<String, String> env = new HashMap<>(env("setup"));
        env.replaceAll((k, v) -> v.replaceAll("\\$\\{SLUICE_SHARDS_PASSWORD:\\?[^}]*}", "secret-from-the-environment"));
        env.replaceAll((k, v) -> v.replaceAll("\\$\\{[A-Z_]+:-([^}]*)}", "$1")); // ${VAR:-default}: compose's default
        return env;
    }

    /** The Sluice configuration the setup service runs with. */
    private SluiceConfig setupConfig() {
        return SluiceConfig.from(RawConfig.fromArgs(new String[0], setupEnvironment(), SluiceConfig.ALIASES));
    }

    private Map<String, String> env(String service) {
        Map<String, String> out = new LinkedHashMap<>();
        Map<String, Object> e = cast(services.get(service).get("environment"));
        e.forEach((k, v) -> out.put(k, String.valueOf(v)));
        return out;
    }

    private List<String> containerPorts(String service) {
        return list(services.get(service).get("ports")).stream().map(p -> p.substring(p.indexOf(':') + 1)).toList();
    }

    private static List<String> list(Object o) {
        if (o == null) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        for (Object x : (List<?>) o) {
            out.add(String.valueOf(x));
        }
        return out;
    }

    private static String string(Object o) {
        return o instanceof List<?> l ? String.join(" ", list(l)) : String.valueOf(o);
    }

    @SuppressWarnings("unchecked")
    private static <T> T cast(Object o) {
        return (T) o;
    }

    private static Map<String, Object> load() {
        try (Reader r = Files.newBufferedReader(ROOT.resolve("docker-compose.yml"))) {
            return new Yaml().load(r);
        } catch (Exception e) {
            throw new IllegalStateException("docker-compose.yml does not parse", e);
        }
    }

    private static Map<String, String> pomProperties() {
        try {
            Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(ROOT.resolve("pom.xml").toFile());
            Element props = (Element) doc.getElementsByTagName("properties").item(0);
            Map<String, String> out = new HashMap<>();
            for (var n = props.getFirstChild(); n != null; n = n.getNextSibling()) {
                if (n instanceof Element e) {
                    out.put(e.getTagName(), e.getTextContent().strip());
                }
            }
            return out;
        } catch (Exception e) {
            throw new IllegalStateException("pom.xml does not parse", e);
        }
    }
}
