package io.sluice.bench;

import io.sluice.devstack.FlinkRest;
import org.apache.flink.core.execution.JobClient;

import java.util.Locale;

/** Measuring helpers every scenario uses: drain rates from task time, progress while a job runs, percentiles, result checks. */
final class BenchSupport {
    private BenchSupport() {
    }

    record Drain(double seconds, double perSecond) {
    }

    /** The drain rate of a finished job: {@code events} over its task time (first task start to last task end, from REST). */
    static Drain drain(String phase, String who, FlinkRest rest, String jobId, long events) throws Exception {
        long[] w = rest.activeWindow(jobId);
        double seconds = (w[1] - w[0]) / 1000.0;
        Drain d = new Drain(seconds, events / seconds);
        System.out.printf(Locale.ROOT, "[%s] %s drained %,d records in %.1f s of task time: %,.0f records/s%n", phase, who, events, seconds, d.perSecond);
        return d;
    }

    interface Count {
        long get() throws Exception;
    }

    /** Waits for a bounded job to finish, printing a progress line every 5 s ({@code progress} < 0: no count). */
    static void awaitWithProgress(String phase, JobClient job, Count progress) throws Exception {
        var done = job.getJobExecutionResult();
        long t0 = System.nanoTime();
        while (!done.isDone()) {
            try {
                done.get(5, java.util.concurrent.TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                long n = progress.get();
                System.out.printf(Locale.ROOT, "[%s] ... %.0f s%s%n", phase, (System.nanoTime() - t0) / 1e9, n < 0 ? "" : String.format(Locale.ROOT, ", %,d records committed", n));
            }
        }
        done.get();
    }

    /** A string literal's content for Flink SQL. */
    static String q(String s) {
        return s.replace("'", "''");
    }

    static long percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return -1;
        }
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("benchmark result is wrong: " + what);
        }
    }

    static String fmt(double v) {
        return String.valueOf(Math.round(v));
    }
}
