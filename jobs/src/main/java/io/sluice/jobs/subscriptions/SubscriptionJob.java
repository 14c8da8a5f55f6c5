package io.sluice.jobs.subscriptions;

import io.sluice.core.avro.RegistryDecoder;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.SluiceJob;
import io.sluice.jobs.common.CountDeadLetters;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import io.sluice.jobs.common.DecodingDeserializer;
import io.sluice.jobs.common.KafkaIo;
import io.sluice.jobs.common.StatelessStartGuard;
import io.sluice.jobs.shards.ShardedSink;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeHint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ordered subscription upserts. In: {@code subscription-updates} (key {@code app_id}). Out: rows in
 * {@code subscriptions} on each app's shard, in offset order per subscription, hot keys coalesced;
 * bad records to the dead-letter topic. Config: {@code subscriptions.*}, {@code shards.*},
 * {@code routing.*}, {@code kafka.*}, {@code registry.url}.
 *
 * <pre>
 * source ──► validate ──► coalesce ──forward──► upsert into shards          (default: no shuffle)
 *               └─► dead letters
 * source ──► validate ──► pre-coalesce ──keyBy(app, subscription)──► coalesce ──forward──► upsert into shards   (subscriptions.key-by)
 * </pre>
 *
 * A subscription lives in one partition and a source subtask reads whole partitions, so without a shuffle each
 * subscription's updates still reach one coalescer and one sink writer in offset order. The shuffle is for
 * parallelism beyond the topic's partitions. The sink is not chained, so the web UI shows a slow shard as
 * backpressure on the vertex before it.
 *
 * Submit: {@code flink run -c io.sluice.jobs.subscriptions.SubscriptionJob jobs/target/sluice-jobs.jar --config sluice.yaml}.
 */
public final class SubscriptionJob implements SluiceJob {
    public static final String NAME = "subscriptions";
    private static final Logger LOG = LoggerFactory.getLogger(SubscriptionJob.class);

    public static void main(String[] args) throws Exception {
        SluiceJob.run(new SubscriptionJob(), args);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String inputTopic(SluiceConfig config) {
        return config.kafka().subscriptionUpdatesTopic();
    }

    @Override
    public void build(StreamExecutionEnvironment env, SluiceConfig config) {
        defineWorkflow(env, config, source(config, false), sink(config), KafkaIo.deadLetterSink(config));
    }

    /** The sharded {@code subscriptions} sink, flushing on {@code subscriptions.flush-interval} and {@code subscriptions.flush-max-rows}. */
    public static ShardedSink<SubscriptionDelta> sink(SluiceConfig config) {
        SluiceConfig.Subscriptions s = config.subscriptions();
        return new ShardedSink<>(config, NAME, new SubscriptionTable(config.kafka().subscriptionUpdatesTopic()), s.flushIntervalMs(), s.flushMaxRows(),
                s.keyBy() ? ShardedSink.BY_KEY : ShardedSink.bySourcePartition(s.sourceEpoch()));
    }

    public static Source<Decoded<SubscriptionUpdate>, ?, ?> source(SluiceConfig config, boolean bounded) {
        TypeInformation<Decoded<SubscriptionUpdate>> type = TypeInformation.of(new TypeHint<>() {
        });
        var deserializer = new DecodingDeserializer<>(new RegistryDecoder<>(SluiceAvro.SUBSCRIPTION_UPDATE, config.registry().url()), type);
        return KafkaIo.source(config, NAME, config.kafka().subscriptionUpdatesTopic(), deserializer, bounded);
    }

    /** The pipeline, apart from the real sources and sinks so tests can pass their own. */
    public static void defineWorkflow(StreamExecutionEnvironment env, SluiceConfig config, Source<Decoded<SubscriptionUpdate>, ?, ?> source,
                                      Sink<SubscriptionDelta> rows, Sink<DeadLetter> deadLetters) {
        SluiceConfig.Subscriptions s = config.subscriptions();
        SluiceJob.configure(env, config);
        if (s.parallelism() > 0) {
            env.setParallelism(s.parallelism());
        }
        SingleOutputStreamOperator<SubscriptionDelta> valid = env
                .fromSource(source, WatermarkStrategy.noWatermarks(), "subscription-updates")
                .uid("subscription-updates-source")
                .process(new ValidateUpdates(config.kafka().subscriptionUpdatesTopic(), s,
                        new SourceGuard(config, NAME, config.kafka().subscriptionUpdatesTopic(), s.sourceEpoch()), config.kafka().partitionDiscoveryMs(),
                        new StatelessStartGuard(config, NAME, config.kafka().subscriptionUpdatesTopic(), s.allowStatelessStart(),
                                "subscriptions.allow-stateless-start", "the updates the sink held for a shard that had not committed them at the last "
                                + "checkpoint (a shard down or slow) would never be written")))
                .returns(SubscriptionDelta.TYPE)
                .uid("validate-updates").name("validate updates");
        DataStream<SubscriptionDelta> updates = valid;
        if (s.keyBy()) { // a small bundle per source subtask first, so a hot key's burst crosses the network once per bundle
            updates = valid.transform("pre-coalesce before shuffle", SubscriptionDelta.TYPE,
                            new Coalescer(s.flushIntervalMs(), Math.min(1000, s.flushMaxRows()), false))
                    .uid("pre-coalesce").name("pre-coalesce before shuffle")
                    .keyBy(SubscriptionDelta::key);
        } else if (s.parallelism() > config.kafka().partitions()) {
            LOG.warn("subscriptions.parallelism {} is more than kafka.partitions {}: subtasks without a partition will idle; "
                    + "set subscriptions.key-by: true to spread coalescing and writes over all of them", s.parallelism(), config.kafka().partitions());
        }
        updates.transform("coalesce per subscription", SubscriptionDelta.TYPE,
                        new Coalescer(s.flushIntervalMs(), s.flushMaxRows(), true))
                .uid("coalesce-per-subscription")
                .sinkTo(rows).uid("upsert-into-shards").name("upsert into shards").disableChaining();
        CountDeadLetters.sinkTo(valid.getSideOutput(DeadLetter.SIDE_OUTPUT), deadLetters, "subscription");
    }
}
