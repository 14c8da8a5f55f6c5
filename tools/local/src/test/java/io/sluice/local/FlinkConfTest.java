package io.sluice.local;

import org.apache.flink.configuration.Configuration;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code flink-conf/config.yaml} as Flink reads it: the settings it promises, the Java 17 list it shares, and the local stack following it. */
class FlinkConfTest {
    private final Configuration conf = LocalFlink.clusterConfig();

    @Test
    void promisesRocksDbIncrementalExactlyOnceCheckpointsRetainedOnCancel() {
        Map<String, String> m = conf.toMap();
        assertThat(m).containsEntry("state.backend.type", "rocksdb")
                .containsEntry("execution.checkpointing.incremental", "true")
                .containsEntry("execution.checkpointing.mode", "EXACTLY_ONCE")
                .containsEntry("execution.checkpointing.interval", "1s")
                .containsEntry("execution.checkpointing.min-pause", "200ms")
                .containsEntry("execution.checkpointing.timeout", "60s")
                .containsEntry("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
                .containsEntry("restart-strategy.type", "exponential-delay")
                .containsEntry("metrics.reporter.prom.factory.class", "org.apache.flink.metrics.prometheus.PrometheusReporterFactory")
                .containsEntry("rest.port", "8081")
                // what the jobs set themselves, for the SQL jobs too: the same key groups everywhere
                .containsEntry("pipeline.max-parallelism", String.valueOf(io.sluice.core.config.SluiceConfig.Deployment.DEFAULT_MAX_PARALLELISM));
    }

    @Test
    void carriesTheJava17ListThatSurefireAndSluiceUse() throws Exception {
        List<String> args = Files.readAllLines(Path.of("../../flink-conf/java17-opens.args")).stream()
                .map(String::trim).filter(l -> !l.isEmpty()).toList();
        assertThat(args).hasSizeGreaterThan(10);
        assertThat(conf.toMap().get("env.java.opts.all").split("\\s+")).contains("-Duser.timezone=UTC").contains(args.toArray(new String[0]));
    }

    @Test
    void theLocalStackTakesItsStateCheckpointAndRestartSettingsFromIt(@org.junit.jupiter.api.io.TempDir Path work) {
        Map<String, String> local = LocalFlink.settings(work, 18081, 4);
        conf.toMap().forEach((k, v) -> {
            boolean shared = LocalFlink.SHARED_PREFIXES.stream().anyMatch(k::startsWith) && !k.endsWith(".dir") && !k.endsWith("savepoint-dir");
            if (shared) {
                assertThat(local).as(k).containsEntry(k, v);
            }
        });
        assertThat(local).containsEntry("execution.checkpointing.dir", work.resolve("checkpoints").toUri().toString()).containsEntry("rest.port", "18081");
    }
}
