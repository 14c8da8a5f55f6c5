package io.sluice.jobs.common;

import org.apache.flink.api.common.operators.ProcessingTimeService;

/** Runs a flush every {@code intervalMs} of processing time on the task thread, for operators and sink writers that buffer. */
public final class PeriodicFlush {
    private PeriodicFlush() {
    }

    /** A flush action that may fail; a failure fails the task, like any other operator exception. */
    public interface Action {
        void run() throws Exception;
    }

    public static void schedule(ProcessingTimeService time, long intervalMs, Action flush) {
        time.registerTimer(time.getCurrentProcessingTime() + intervalMs, t -> {
            flush.run();
            schedule(time, intervalMs, flush);
        });
    }
}
