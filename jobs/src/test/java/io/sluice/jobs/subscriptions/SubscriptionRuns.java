package io.sluice.jobs.subscriptions;

import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.testkit.TestStack;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.util.Map;

/** The subscription job on a test's MiniCluster as the ITCases run it: its real source and dead-letter sink, checkpoints every 500 ms. */
public final class SubscriptionRuns {
    private SubscriptionRuns() {
    }

    /**
     * Reads what the topic holds now, writes it to the shards, and returns when done (or throws the job's failure). Each
     * run starts without state, also after an earlier one in the same group ({@code subscriptions.allow-stateless-start}):
     * a bounded run ends only once every row is committed, so its successor loses nothing.
     */
    public static void runBounded(TestStack stack) throws Exception {
        StreamExecutionEnvironment env = environment(new Configuration());
        SluiceConfig config = stack.with(Map.of("subscriptions.allow-stateless-start", "true")).config();
        SubscriptionJob.defineWorkflow(env, config, SubscriptionJob.source(config, true), SubscriptionJob.sink(config), KafkaIo.deadLetterSink(config));
        env.execute("subscriptions-test");
    }

    /** Starts the job with its real shard sink; it runs until cancelled. */
    public static JobClient start(TestStack stack) throws Exception {
        return start(stack, SubscriptionJob.sink(stack.config()));
    }

    /** Starts the job writing rows through {@code sink} (e.g. one that injects a fault); it runs until cancelled. */
    public static JobClient start(TestStack stack, Sink<SubscriptionDelta> sink) throws Exception {
        return start(stack, sink, new Configuration());
    }

    /** Starts the job with its real shard sink and Flink settings {@code conf} (e.g. a savepoint to restore); it runs until cancelled. */
    public static JobClient start(TestStack stack, Configuration conf) throws Exception {
        return start(stack, SubscriptionJob.sink(stack.config()), conf);
    }

    private static JobClient start(TestStack stack, Sink<SubscriptionDelta> sink, Configuration conf) throws Exception {
        StreamExecutionEnvironment env = environment(conf);
        SubscriptionJob.defineWorkflow(env, stack.config(), SubscriptionJob.source(stack.config(), false), sink, KafkaIo.deadLetterSink(stack.config()));
        return env.executeAsync("subscriptions-test");
    }

    private static StreamExecutionEnvironment environment(Configuration conf) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.enableCheckpointing(500);
        return env;
    }
}
