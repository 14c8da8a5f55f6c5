package io.sluice.testkit;

import io.sluice.testkit.FlinkRest;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.test.junit5.MiniClusterExtension;

import java.time.Duration;
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
        long deadline = System.currentTimeMillis() + 60_000;
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
     * Cancels {@code job} unless it has already ended, and waits until it has (at most 2 minutes): a later test on the
     * same MiniCluster needs its slots. Safe in a {@code finally} after a stop-with-savepoint.
     */
    public static void cancelIfRunning(JobClient job) throws Exception {
        if (!job.getJobStatus().get(30, TimeUnit.SECONDS).isGloballyTerminalState()) {
            job.cancel().handle((ok, alreadyEnded) -> null).get(60, TimeUnit.SECONDS);
        }
        job.getJobExecutionResult().handle((r, e) -> null).get(2, TimeUnit.MINUTES);
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
