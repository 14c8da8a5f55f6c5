package io.sluice.jobs.aggregation;

import io.sluice.jobs.common.KafkaIo;
import io.sluice.testkit.TestStack;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/** The aggregation job on a test's MiniCluster as the ITCases run it: its real sources, push queue and dead-letter sink, checkpoints every 500 ms. */
public final class AggregationRuns {
    private AggregationRuns() {
    }

    /** Starts the job writing window counts through {@code rows}, with {@code conf} (e.g. a savepoint path); it runs until cancelled. */
    public static JobClient start(TestStack stack, Sink<WindowCount> rows, Configuration conf) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.enableCheckpointing(500);
        AggregationJob.defineWorkflow(env, stack.config(), AggregationJob.eventSource(stack.config(), false), AggregationJob.campaignSource(stack.config(), false),
                rows, AggregationJob.pushSink(stack.config()), KafkaIo.deadLetterSink(stack.config()));
        return env.executeAsync("aggregation-test");
    }
}
