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
 * Keeps {@code ./sluice bench aggregation} working: both phases at a tiny size, checking that the
 * RESULT line carries every figure docs/benchmarks.md quotes. Not a performance test: the figures are not judged.
 */
class AggregationBenchITCase {
    @Test
    void everyPhaseRunsAndTheResultLineHasEveryFigure(@TempDir Path work) throws Exception {
        RawConfig raw = RawConfig.fromArgs(new String[] {"--bench.drain-events", "20000", "--bench.drain-users", "2000", "--bench.same-work-events", "5000",
                "--bench.sustained-rate", "1000", "--bench.sustained-seconds", "14", "--bench.sustained-users", "5000"}, Map.of(), Map.of());
        Path plot = Path.of("target", "sluice-bench", "aggregation.png");
        Files.deleteIfExists(plot);
        String result;
        try (EmbeddedStack stack = EmbeddedStack.start(2, 0); LocalFlink flink = LocalFlink.start(work, 0, 8)) {
            result = new AggregationBench(raw).run(stack, flink);
        }
        Map<String, Double> figures = new HashMap<>();
        for (String kv : result.split(" ")) {
            String[] p = kv.split("=", 2);
            figures.put(p[0], Double.parseDouble(p[1]));
        }
        assertThat(figures).containsKeys("events_per_s", "p99_result_latency_ms", "push_jobs_per_s", "state_keys", "checkpoint_ms_p50",
                "checkpoint_ms_p99", "vs_flink_sql_window", "vs_flink_sql_same_work", "row_writes", "flink_sql_window_row_writes",
                "flink_sql_same_work_row_writes", "same_work_events_per_s", "same_work_row_writes");
        assertThat(figures.get("flink_sql_same_work_row_writes")).isPositive();
        assertThat(plot).as("the run's plot").isNotEmptyFile();
        assertThat(figures.get("events_per_s")).isPositive();
        assertThat(figures.get("push_jobs")).as("the generator's campaigns find users").isPositive();
        assertThat(figures.get("state_keys")).isPositive();
        assertThat(figures.get("p99_result_latency_ms")).isPositive();
    }
}
