package io.sluice.jobs.sidekiq;

import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.SluiceJob;
import io.sluice.jobs.common.CountDeadLetters;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import io.sluice.jobs.common.KafkaIo;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

import java.util.Map;

/**
 * The Kafka → Sidekiq bridge, for Ruby workers that stay on Sidekiq while the work moves to Kafka. In:
 * {@code sidekiq.topic} ({@code push-queue} by default, read {@code read_committed}, so a push appears only once its
 * checkpoint committed it). Out: one ordinary Sidekiq job per record in Redis ({@link SidekiqMapping}, enqueued once per
 * {@code jid} by {@link SidekiqSink}); records that cannot be jobs to the dead-letter topic. While Sidekiq's queues hold
 * more than {@code sidekiq.max-queue-length} jobs, the source takes nothing ({@link QueueLimitedSource}): the backlog stays
 * in Kafka. Not one of the jobs every deployment runs: see {@code docs/sidekiq.md}.
 *
 * <pre>
 * source (limited by queue length) ──► split dead letters ──► enqueue into Sidekiq
 *                                              └─► dead letters
 * </pre>
 *
 * Submit: {@code flink run -c io.sluice.jobs.sidekiq.SidekiqBridgeJob jobs/target/sluice-jobs.jar --config sluice.yaml}.
 */
public final class SidekiqBridgeJob implements SluiceJob {
    public static final String NAME = "sidekiq-bridge";

    public static void main(String[] args) throws Exception {
        SluiceJob.run(new SidekiqBridgeJob(), args);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String inputTopic(SluiceConfig config) {
        return config.sidekiq().topic();
    }

    @Override
    public void build(StreamExecutionEnvironment env, SluiceConfig config) {
        defineWorkflow(env, config, source(config, false), new SidekiqSink(config.sidekiq()), KafkaIo.deadLetterSink(config));
    }

    /**
     * The bridged topic, read {@code read_committed}, each record mapped to a Sidekiq job; limited by the queues' length. The
     * consumer group is {@code <group-prefix>-sidekiq-bridge}, with {@code -<topic>} appended for a topic other than the push
     * queue, so one bridge per topic (each with its own mapping) keeps its own offsets. Without committed offsets (its first
     * start) it begins at {@code sidekiq.start-from}: the end of the topic by default, so a bridge added to a push queue
     * that other consumers have served for days does not send its whole history again. Once it reads, an offset out of
     * range (records retention deleted before the bridge read them) resets to the oldest record left
     * ({@link EarliestWhenOutOfRange}).
     */
    public static Source<Decoded<SidekiqPush>, ?, ?> source(SluiceConfig config, boolean bounded) {
        SluiceConfig.Sidekiq s = config.sidekiq();
        // resolved to numbers when the splits are assigned (the group's committed offsets, else the topic's end or beginning), so
        // a split restored before it read anything starts where it was assigned, not at a topic end that moved on meanwhile;
        // an offset retention deleted before it was read goes on from the oldest record left, never the end
        OffsetsInitializer start = new EarliestWhenOutOfRange(
                OffsetsInitializer.offsets(Map.of(), s.startFromLatest() ? OffsetResetStrategy.LATEST : OffsetResetStrategy.EARLIEST));
        return new QueueLimitedSource<>(KafkaIo.source(config, consumerName(config), s.topic(),
                new SidekiqRecords(config.registry().url(), new SidekiqMapping(s)), start, bounded), s);
    }

    /** The job part of the bridge's consumer group: its name, and the topic when it is not the push queue. */
    public static String consumerName(SluiceConfig config) {
        String topic = config.sidekiq().topic();
        return topic.equals(config.kafka().pushQueueTopic()) ? NAME : NAME + "-" + topic;
    }

    /** The pipeline, apart from the real sources and sinks so tests can pass their own. */
    public static void defineWorkflow(StreamExecutionEnvironment env, SluiceConfig config, Source<Decoded<SidekiqPush>, ?, ?> source,
                                      Sink<SidekiqPush> sidekiq, Sink<DeadLetter> deadLetters) {
        SluiceJob.configure(env, config);
        env.setParallelism(config.sidekiq().parallelism());
        SingleOutputStreamOperator<SidekiqPush> jobs = env
                .fromSource(source, WatermarkStrategy.noWatermarks(), "bridged records", SidekiqRecords.TYPE)
                .uid("sidekiq-bridge-source")
                .process(new DeadLettersAside()).uid("sidekiq-bridge-split").name("split dead letters");
        jobs.sinkTo(sidekiq).uid("sidekiq-enqueue").name("enqueue into Sidekiq");
        CountDeadLetters.sinkTo(jobs.getSideOutput(DeadLetter.SIDE_OUTPUT), deadLetters, NAME);
    }

    /** Jobs on, dead letters to the side output. */
    static final class DeadLettersAside extends ProcessFunction<Decoded<SidekiqPush>, SidekiqPush> {
        @Override
        public void processElement(Decoded<SidekiqPush> d, Context ctx, Collector<SidekiqPush> out) {
            if (d.deadLetter != null) {
                ctx.output(DeadLetter.SIDE_OUTPUT, d.deadLetter);
            } else {
                out.collect(d.value);
            }
        }
    }
}
