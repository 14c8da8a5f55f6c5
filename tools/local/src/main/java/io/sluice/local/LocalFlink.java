package io.sluice.local;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Flink for the local stack: a MiniCluster (one JobManager and one TaskManager in this JVM) with
 * the web UI and REST API on {@code webPort}. Jobs are submitted to it over REST with
 * {@link #environment()}, the same way a client submits to a real session cluster. State,
 * checkpointing and restarts are set as in {@code flink-conf/config.yaml} (RocksDB, incremental,
 * exactly-once every second), with checkpoints under {@code workDir}.
 */
public final class LocalFlink implements AutoCloseable {
    private final MiniCluster cluster;
    private final Configuration configuration;
    private final URI rest;

    private LocalFlink(MiniCluster cluster, Configuration configuration, URI rest) {
        this.cluster = cluster;
        this.configuration = configuration;
        this.rest = rest;
    }

    /** The keys of {@code flink-conf/config.yaml} the local stack takes as they are: state, checkpointing, restarts, TaskManager memory. */
    static final List<String> SHARED_PREFIXES = List.of("state.", "execution.checkpointing.", "restart-strategy.",
            "taskmanager.memory.managed.", "taskmanager.memory.network.");

    /**
     * The settings of the local stack: those of {@code flink-conf/config.yaml} (found in the working
     * directory or a parent) under {@link #SHARED_PREFIXES}, with this machine's web port, slots and a
     * checkpoint directory under {@code workDir}.
     */
    public static Map<String, String> settings(Path workDir, int webPort, int slots) {
        Map<String, String> s = new LinkedHashMap<>();
        clusterConfig().toMap().forEach((k, v) -> {
            if (SHARED_PREFIXES.stream().anyMatch(k::startsWith)) {
                s.put(k, v);
            }
        });
        s.put("rest.port", String.valueOf(webPort));
        s.put("rest.address", "localhost");
        s.put("rest.bind-address", "localhost");
        s.put("taskmanager.numberOfTaskSlots", String.valueOf(slots));
        s.put("execution.checkpointing.dir", workDir.resolve("checkpoints").toUri().toString());
        s.put("execution.checkpointing.savepoint-dir", workDir.resolve("savepoints").toUri().toString());
        s.put("web.cancel.enable", "true");
        // The web UI's and REST API's metrics are at most this old (Flink's default, 10 s, hides a lock shorter than that).
        s.put("metrics.fetcher.update-interval", "1s");
        return s;
    }

    /** {@code flink-conf/config.yaml} of the repository, read as Flink reads it. */
    public static Configuration clusterConfig() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("flink-conf/config.yaml"))) {
                return GlobalConfiguration.loadConfiguration(dir.resolve("flink-conf").toString());
            }
        }
        throw new IllegalStateException("flink-conf/config.yaml not found in " + Path.of("").toAbsolutePath() + " or a parent: run from the repository");
    }

    public static LocalFlink start(Path workDir, int webPort, int slots) throws Exception {
        Configuration conf = Configuration.fromMap(settings(workDir, webPort, slots));
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(slots)
                .build());
        try {
            cluster.start();
            URI rest = cluster.getRestAddress().get(60, TimeUnit.SECONDS);
            return new LocalFlink(cluster, conf, rest);
        } catch (Exception e) {
            cluster.close();
            throw e;
        }
    }

    /** The web UI and REST base URL, e.g. {@code http://localhost:8081}. */
    public URI restAddress() {
        return rest;
    }

    /** A fresh environment whose {@code executeAsync} submits to this cluster over REST. */
    public StreamExecutionEnvironment environment() {
        return StreamExecutionEnvironment.createRemoteEnvironment(rest.getHost(), rest.getPort(), new Configuration(configuration));
    }

    public MiniCluster miniCluster() {
        return cluster;
    }

    @Override
    public void close() throws Exception {
        cluster.closeAsync().get(60, TimeUnit.SECONDS);
    }
}
