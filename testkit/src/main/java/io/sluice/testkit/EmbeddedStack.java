package io.sluice.testkit;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.setup.StackSetup;
import io.sluice.testkit.generator.GeneratorConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The embedded infrastructure, started in parallel: a KRaft broker, the schema registry stand-in
 * and {@code shards} Postgres servers. The local command and the test kit both use this class, so
 * what the tests run against is what a newcomer runs. {@link #connect(RawConfig, String)} writes the
 * endpoints into a configuration.
 */
public final class EmbeddedStack implements AutoCloseable {
    public final EmbeddedKafka kafka;
    public final SchemaRegistryStandIn registry;
    public final PostgresShards postgres;
    /** Start time of each part in milliseconds, for the startup line. */
    public final Map<String, Long> startMillis;

    private EmbeddedStack(EmbeddedKafka kafka, SchemaRegistryStandIn registry, PostgresShards postgres, Map<String, Long> startMillis) {
        this.kafka = kafka;
        this.registry = registry;
        this.postgres = postgres;
        this.startMillis = startMillis;
    }

    public static EmbeddedStack start(int shards, int registryPort) throws Exception {
        org.slf4j.LoggerFactory.getLogger(EmbeddedStack.class); // initialise logging before the parallel starts use it
        Map<String, Long> millis = new LinkedHashMap<>();
        CompletableFuture<EmbeddedKafka> kafka = CompletableFuture.supplyAsync(() -> timed(millis, "kafka", EmbeddedKafka::start));
        CompletableFuture<PostgresShards> pg = CompletableFuture.supplyAsync(() -> timed(millis, "postgres", () -> PostgresShards.start(shards)));
        CompletableFuture<SchemaRegistryStandIn> registry = CompletableFuture.supplyAsync(() -> timed(millis, "registry", () -> SchemaRegistryStandIn.start(registryPort)));
        List<AutoCloseable> started = new ArrayList<>();
        Exception failure = null;
        for (CompletableFuture<? extends AutoCloseable> f : List.of(kafka, pg, registry)) {
            try {
                started.add(f.join());
            } catch (RuntimeException e) {
                failure = failure == null ? new Exception("the embedded stack did not start: " + e.getCause(), e.getCause()) : failure;
            }
        }
        if (failure != null) {
            for (AutoCloseable c : started) {
                c.close();
            }
            throw failure;
        }
        return new EmbeddedStack(kafka.join(), registry.join(), pg.join(), millis);
    }

    /** Points {@code raw} at this stack; the shards' database is {@code database}, which is created if missing. */
    public RawConfig connect(RawConfig raw, String database) throws Exception {
        postgres.createDatabase(database);
        List<String> urls = new ArrayList<>();
        for (int i = 0; i < postgres.count(); i++) {
            urls.add(postgres.jdbcUrl(i, database));
        }
        return raw.put("kafka.bootstrap", kafka.bootstrap(), "embedded stack")
                .put("registry.url", registry.url(), "embedded stack")
                .put("shards.urls", String.join(",", urls), "embedded stack")
                .put("shards.user", PostgresShards.USER, "embedded stack");
    }

    /** A configuration with its own topics and databases on this stack, set up (topics, schemas, migrations). */
    public record Namespace(SluiceConfig config, GeneratorConfig generator, Map<String, Integer> schemaIds, Map<String, String> settings) {
        /** The job settings as {@code --key value} arguments: what a job's {@code main()} on a cluster needs to see this namespace (generator keys are not a job's). */
        public List<String> args() {
            List<String> args = new ArrayList<>();
            settings.forEach((k, v) -> {
                if (!k.startsWith("generator.")) {
                    args.add("--" + k);
                    args.add(v);
                }
            });
            return args;
        }
    }

    /**
     * Fresh topics named {@code <prefix><topic>} ({@code partitions} each), a fresh database on every
     * shard, consumer groups {@code <prefix>sluice-<job>} and transactional ids {@code <prefix>sluice-push-*} (unless the overrides
     * name a {@code deployment.id}, from which they derive), set up exactly as the local command does;
     * {@code overrides} are further config keys and win over these. For tests and benchmarks that must not see each other's data.
     */
    public Namespace namespace(String prefix, int partitions, Map<String, String> overrides) throws Exception {
        RawConfig raw = RawConfig.empty();
        connect(raw, prefix.replaceAll("[^A-Za-z0-9]", "_").toLowerCase(java.util.Locale.ROOT) + "db");
        for (String topic : new String[] {"user-events", "subscription-updates", "campaigns", "push-queue", "dead-letters"}) {
            raw.put("kafka.topics." + topic, prefix + topic, "namespace");
        }
        raw.put("kafka.partitions", String.valueOf(partitions), "namespace");
        if (!overrides.containsKey("deployment.id")) { // with one, the prefixes derive from it as in production
            raw.put("kafka.group-prefix", prefix + "sluice", "namespace");
            raw.put("push.transactional-id-prefix", prefix + "sluice-push", "namespace");
        }
        overrides.forEach((k, v) -> raw.put(k, v, "override"));
        SluiceConfig config = SluiceConfig.from(raw);
        GeneratorConfig generator = GeneratorConfig.from(raw);
        raw.rejectUnread();
        return new Namespace(config, generator, StackSetup.run(config).schemaIds(), Map.copyOf(raw.values()));
    }

    @Override
    public void close() throws Exception {
        Exception first = null;
        for (AutoCloseable c : new AutoCloseable[] {registry, kafka, postgres}) {
            try {
                c.close();
            } catch (Exception e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    interface Starter<T> {
        T start() throws Exception;
    }

    private static <T> T timed(Map<String, Long> millis, String name, Starter<T> starter) {
        long t0 = System.nanoTime();
        try {
            T t = starter.start();
            synchronized (millis) {
                millis.put(name, (System.nanoTime() - t0) / 1_000_000);
            }
            return t;
        } catch (Exception e) {
            throw new RuntimeException(name + ": " + e.getMessage(), e);
        }
    }
}
