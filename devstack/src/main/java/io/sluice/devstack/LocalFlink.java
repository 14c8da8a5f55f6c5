package io.sluice.devstack;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.net.URI;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Flink for the local stack: a MiniCluster (one JobManager and one TaskManager in this JVM) with
 * the web UI and REST API on {@code webPort}. Jobs are submitted to it over REST with
 * {@link #environment()}, the same way a client submits to a real session cluster. State lives in
 * RocksDB with incremental, exactly-once checkpoints every second under {@code workDir}.
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

    /** The cluster- and job-level settings of the local stack (the same keys as {@code flink-conf/config.yaml}). */
    public static Map<String, String> settings(Path workDir, int webPort, int slots) {
        Map<String, String> s = new LinkedHashMap<>();
        s.put("rest.port", String.valueOf(webPort));
        s.put("rest.address", "localhost");
        s.put("rest.bind-address", "localhost");
        s.put("taskmanager.numberOfTaskSlots", String.valueOf(slots));
        s.put("taskmanager.memory.managed.size", "1536m"); // RocksDB write buffers and block cache, shared by the slots
        s.put("taskmanager.memory.network.min", "64m");
        s.put("taskmanager.memory.network.max", "64m");
        s.put("state.backend.type", "rocksdb");
        s.put("execution.checkpointing.incremental", "true");
        s.put("execution.checkpointing.dir", workDir.resolve("checkpoints").toUri().toString());
        s.put("execution.checkpointing.savepoint-dir", workDir.resolve("savepoints").toUri().toString());
        s.put("execution.checkpointing.interval", "1s");
        s.put("execution.checkpointing.mode", "EXACTLY_ONCE");
        s.put("execution.checkpointing.min-pause", "200ms");
        s.put("execution.checkpointing.timeout", "60s");
        s.put("restart-strategy.type", "exponential-delay");
        s.put("restart-strategy.exponential-delay.initial-backoff", "1s");
        s.put("restart-strategy.exponential-delay.max-backoff", "10s");
        s.put("web.cancel.enable", "true");
        return s;
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
