package io.sluice.bench;

import io.sluice.core.config.RawConfig;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.local.LocalFlink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Keeps {@code ./sluice bench subscriptions} working: every phase at a tiny size, checking that the
 * RESULT line carries every figure docs/benchmarks.md quotes. Not a performance test: the figures are not judged.
 */
class SubscriptionBenchITCase {
    @Test
    void everyPhaseRunsAndTheResultLineHasEveryFigure(@TempDir Path work) throws Exception {
        RawConfig raw = RawConfig.fromArgs(new String[] {"--bench.distinct-events", "5000", "--bench.skewed-events", "5000", "--bench.warm-up-events", "2000", "--bench.runs", "1",
                "--bench.sustained-rate", "1000", "--bench.sustained-seconds", "6", "--bench.outage-seconds", "4"}, Map.of(), Map.of());
        Path plot = Path.of("target", "sluice-bench", "subscriptions.png");
        Files.deleteIfExists(plot);
        String result;
        try (EmbeddedStack stack = EmbeddedStack.start(2, 0); LocalFlink flink = LocalFlink.start(work, 0, 8)) {
            result = new SubscriptionBench(raw).run(stack, flink);
        }
        Map<String, Double> figures = new HashMap<>();
        for (String kv : result.split(" ")) {
            String[] p = kv.split("=", 2);
            figures.put(p[0], Double.parseDouble(p[1]));
        }
        assertThat(figures).containsKeys("events_per_s", "to_last_commit_events_per_s", "rows_written_per_s", "coalescing_ratio", "p99_time_lag_ms", "checkpoint_ms_p50",
                "vs_flink_sql_jdbc", "vs_flink_sql_jdbc_tuned", "of_pg_ceiling", "outage_healthy_p99_time_lag_ms", "outage_catch_up_s",
                "outage_pending_rows_max", "outage_checkpoint_max_bytes", "outage_checkpoint_max_ms");
        assertThat(figures.get("events_per_s")).isPositive();
        assertThat(figures.get("coalescing_ratio")).isGreaterThan(1.0); // the skewed run has hot-key bursts
        assertThat(figures.get("p99_time_lag_ms")).isPositive();
        assertThat(plot).as("the run's plot").isNotEmptyFile();
        assertThat(figures.get("outage_pending_rows_max")).as("rows the sink held for the locked shard").isPositive();
    }
}
