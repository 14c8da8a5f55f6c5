package io.sluice.testkit;

import io.sluice.testkit.FlinkRest;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.test.junit5.MiniClusterExtension;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.DoublePredicate;

/** Flink for the job tests: the MiniCluster they run on (one TaskManager with 4 slots, restarting failed jobs after 500 ms, without limit), and waiting for a metric over REST. */
public final class TestFlink {
    private TestFlink() {
    }

    /**
     * Polls {@link FlinkRest#metric} (aggregated with {@code agg} over the vertex's subtasks) until the
     * value satisfies {@code ok}, for up to 60 s; fails with the last value seen and the job's vertices.
     */
    public static void awaitMetric(FlinkRest rest, String jobId, String vertex, String metric, String agg, DoublePredicate ok) throws Exception {
        awaitMetric(rest, jobId, vertex, metric, agg, ok, java.time.Duration.ofSeconds(60));
    }

    /** {@link #awaitMetric(FlinkRest, String, String, String, String, DoublePredicate)}, for up to {@code timeout}. */
    public static void awaitMetric(FlinkRest rest, String jobId, String vertex, String metric, String agg, DoublePredicate ok,
                                   java.time.Duration timeout) throws Exception {
        long deadline = System.currentTimeMillis() + timeout.toMillis();
        double seen = Double.NaN;
        while (System.currentTimeMillis() < deadline) {
            try {
                seen = rest.metric(jobId, vertex, metric, agg);
                if (!Double.isNaN(seen) && ok.test(seen)) {
                    return;
                }
            } catch (java.io.IOException notYetScheduled) {
                // the job's vertices appear once it is scheduled
            }
            Thread.sleep(200);
        }
        throw new AssertionError(metric + " (" + agg + ") of '" + vertex + "' in job " + jobId + " was " + seen + "; vertices: "
                + rest.get("/jobs/" + jobId).path("vertices").findValuesAsText("name"));
    }

    /**
     * Cancels every job of {@code jobs} that has not ended yet, then waits until all have (at most 2 minutes each): a
     * later test on the same MiniCluster needs their slots. Safe in a {@code finally} after a stop-with-savepoint.
     */
    public static void cancelIfRunning(JobClient... jobs) throws Exception {
        List<String> problems = new ArrayList<>();
        for (JobClient job : jobs) {
            try {
                if (!job.getJobStatus().get(30, TimeUnit.SECONDS).isGloballyTerminalState()) {
                    job.cancel().get(60, TimeUnit.SECONDS);
                }
            } catch (Exception e) {
                problems.add("cancelling job " + job.getJobID() + ": " + e); // it may have ended meanwhile; the wait below tells
            }
        }
        for (JobClient job : jobs) {
            try {
                job.getJobExecutionResult().handle((r, e) -> null).get(2, TimeUnit.MINUTES);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError("job " + job.getJobID() + " had not ended 2 minutes after it was cancelled; " + problems);
            }
        }
    }

    /**
     * Waits until job {@code job} on {@code cluster} reports that it restored {@code path} and runs every vertex at
     * {@code parallelism}: a test of a restore must not pass on a job that started without its state.
     */
    public static void awaitRestored(org.apache.flink.runtime.minicluster.MiniCluster cluster, org.apache.flink.api.common.JobID job, String path,
                                     int parallelism) throws Exception {
        String restored = Await.until("job " + job + " to report its restore", Duration.ofSeconds(60), Duration.ofMillis(200), () -> {
            var stats = cluster.getExecutionGraph(job).get(30, TimeUnit.SECONDS).getCheckpointStatsSnapshot();
            var latest = stats == null ? null : stats.getLatestRestoredCheckpoint();
            return latest == null ? "" : latest.getExternalPath();
        }, p -> !p.isEmpty());
        org.assertj.core.api.Assertions.assertThat(java.nio.file.Path.of(java.net.URI.create(restored)).normalize())
                .as("the state job " + job + " restored").isEqualTo(java.nio.file.Path.of(java.net.URI.create(path)).normalize());
        for (var v : cluster.getExecutionGraph(job).get(30, TimeUnit.SECONDS).getAllVertices().values()) {
            org.assertj.core.api.Assertions.assertThat(v.getParallelism()).as("parallelism of " + v.getName()).isEqualTo(parallelism);
        }
    }

    public static MiniClusterExtension miniCluster() {
        Configuration c = new Configuration();
        c.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
        c.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 1000);
        c.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(500));
        // the REST metrics tests wait on are fetched from the TaskManager every 10 s by default
        c.set(org.apache.flink.configuration.MetricOptions.METRIC_FETCHER_UPDATE_INTERVAL, Duration.ofMillis(500));
        return new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
                .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(4).setConfiguration(c).build());
    }
}
