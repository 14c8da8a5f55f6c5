package io.sluice.jobs;

import io.sluice.core.config.ConfigException;
import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.common.SavepointCheck;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * A Sluice job as the launchers see it: the local command, the benchmark and the tests build every
 * job through this, the shaded jar's {@code main()} methods too, so wiring lives in one place.
 */
public interface SluiceJob {
    /** Short stable name: Flink job name suffix, consumer group suffix, progress-table key. */
    String name();

    /** The topic the job consumes; its message lag is measured there. */
    String inputTopic(SluiceConfig config);

    /** Checks against the running stack that only a submission needs (the brokers' limits); none by default. */
    default void checkBeforeSubmit(SluiceConfig config) {
    }

    /** Adds the job's real sources, operators and sinks to {@code env}. */
    void build(StreamExecutionEnvironment env, SluiceConfig config) throws Exception;

    /** What each job's {@code main()} does under {@code flink run}: configuration from the arguments, then run as {@code sluice-<name>}. */
    static void run(SluiceJob job, String[] args) throws Exception {
        SluiceConfig config = SluiceConfig.fromArgs(args);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        job.build(env, config); // configuration errors first, then what only the brokers can say
        job.checkBeforeSubmit(config);
        env.execute("sluice-" + job.name());
    }

    /**
     * The environment settings every Sluice DataStream job runs with, applied by each job's {@code defineWorkflow}
     * so every launcher and test gets them, after refusing a configuration without a deployment identity
     * ({@link SluiceConfig.Deployment}):
     * <ul>
     *   <li>no auto-generated operator uids: an operator without {@code .uid()} fails when the job is built (in
     *   {@code mvn verify}), not at the first savepoint upgrade. Set here, not in {@code flink-conf/config.yaml},
     *   where it would also refuse the SQL jobs, which have no uids;</li>
     *   <li>object reuse: every operator emits fresh records and none changes its input, so chained operators can
     *   skip Flink's copies;</li>
     *   <li>aligned checkpoints, whatever the cluster's configuration says: the records between operators cross with
     *   hand-written serializers whose formats a build may change, and only unaligned checkpoints would store such
     *   records, restored with the new build's serializer without any check (the sinks also rely on the flush before
     *   each barrier);</li>
     *   <li>max parallelism {@code deployment.max-parallelism}, the same on every launcher, so state taken on one restores
     *   on another; a savepoint or checkpoint to restore ({@code execution.state-recovery.path}) taken with another value
     *   is refused here, naming the key ({@link SavepointCheck}).</li>
     * </ul>
     */
    static void configure(StreamExecutionEnvironment env, SluiceConfig config) {
        config.deployment().problem().ifPresent(problem -> {
            throw new ConfigException(problem);
        });
        configure(env);
        env.setMaxParallelism(config.deployment().maxParallelism());
        String restore = env.getConfiguration().get(StateRecoveryOptions.SAVEPOINT_PATH);
        if (restore != null) {
            SavepointCheck.requireMaxParallelism(restore, config.deployment().maxParallelism());
        }
    }

    /** The environment settings alone (for tests of them). */
    static void configure(StreamExecutionEnvironment env) {
        env.configure(new Configuration()
                .set(PipelineOptions.OBJECT_REUSE, true)
                .set(PipelineOptions.AUTO_GENERATE_UIDS, false)
                .set(CheckpointingOptions.ENABLE_UNALIGNED, false));
    }
}
