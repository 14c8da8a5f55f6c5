package io.sluice.jobs.aggregation;

import io.sluice.core.avro.RegistryDecoder;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.core.model.StateKeys;
import io.sluice.core.model.UserEvent;
import io.sluice.jobs.SluiceJob;
import io.sluice.jobs.campaigns.Pacer;
import io.sluice.jobs.campaigns.PendingPush;
import io.sluice.jobs.campaigns.PushJobSerializer;
import io.sluice.jobs.campaigns.ValidateCampaigns;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.jobs.common.BacklogAwareIdleness;
import io.sluice.jobs.common.BacklogAwareSource;
import io.sluice.jobs.common.BroadcastWatermarks;
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
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.time.Duration;

/**
 * Per-user window counts, campaign segments and the push queue. In: {@code user-events} (key
 * {@code app_id:user_id}) and the compacted {@code campaigns} topic. Out: rows in
 * {@code user_event_counts} on each app's shard; {@link PushJob}s on {@code push-queue}, exactly once
 * (Kafka transactions) and paced per campaign; late and bad records to the dead-letter topic.
 * Config: {@code aggregation.*}, {@code push.*}, {@code shards.*}, {@code routing.*}, {@code kafka.*}, {@code registry.url}.
 *
 * <pre>
 * user-events ──► validate, lateness ──► bundle ──keyBy(app:user)──► count windows ──forward──► upsert into shards
 *                    │                                     detect segment entries ──keyBy(campaign)──► pace ──► push-queue (EO)
 *                    └─► dead letters ◄── late (behind the floor) ┘ ▲ broadcast
 * campaigns ──► validate ────────────────────────────────────┘
 * </pre>
 *
 * Submit: {@code flink run -c io.sluice.jobs.aggregation.AggregationJob jobs/target/sluice-jobs.jar --config sluice.yaml}.
 */
public final class AggregationJob implements SluiceJob {
    public static final String NAME = "aggregation";

    public static void main(String[] args) throws Exception {
        SluiceJob.run(new AggregationJob(), args);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String inputTopic(SluiceConfig config) {
        return config.kafka().userEventsTopic();
    }

    @Override
    public void checkBeforeSubmit(SluiceConfig config) {
        KafkaIo.checkTransactionTimeout(config);
    }

    @Override
    public void build(StreamExecutionEnvironment env, SluiceConfig config) {
        defineWorkflow(env, config, eventSource(config, false), campaignSource(config, false), sink(config), pushSink(config),
                KafkaIo.deadLetterSink(config));
    }

    /** The sharded {@code user_event_counts} sink. */
    public static ShardedSink<WindowCount> sink(SluiceConfig config) {
        SluiceConfig.Aggregation a = config.aggregation();
        return new ShardedSink<>(config, NAME, new UserEventCountsTable(config.kafka().userEventsTopic()), a.flushIntervalMs(), a.flushMaxRows());
    }

    /** {@code push-queue}, exactly once, with the CloudEvents headers. */
    public static Sink<PushJob> pushSink(SluiceConfig config) {
        return KafkaIo.exactlyOnceSink(config, new PushJobSerializer(config.kafka().pushQueueTopic(), config.registry().url(), config.push().ceSource()),
                config.push().transactionalIdPrefix());
    }

    public static Source<Decoded<UserEvent>, ?, ?> eventSource(SluiceConfig config, boolean bounded) {
        return eventSource(config, eventDeserializer(config), KafkaIo.committedOrEarliest(), bounded);
    }

    /**
     * The {@code user-events} source with {@code deserializer}, from {@code starting}. It tells the watermark generators
     * whether its subtask still has records to read ({@link BacklogAwareSource}): a partition waiting its turn in a
     * backlog must not go idle, or the watermark follows the partitions being read and the waiting one's events come in
     * as late dead letters (docs/aggregation.md, "Event time and lateness"). It fetches at most
     * {@code aggregation.partition-fetch-bytes} (256 KiB) of a partition at a time, not the consumer's 1 MiB, so the
     * partitions of a subtask reading a backlog take turns in small steps. With {@code aggregation.idleness} 0 no partition
     * ever goes idle, nothing asks, and the source is Kafka's alone (the same splits and state either way).
     */
    public static Source<Decoded<UserEvent>, ?, ?> eventSource(SluiceConfig config, KafkaRecordDeserializationSchema<Decoded<UserEvent>> deserializer,
                                                               OffsetsInitializer starting, boolean bounded) {
        var kafka = KafkaIo.source(config, NAME, config.kafka().userEventsTopic(), deserializer, starting, bounded,
                config.aggregation().partitionFetchBytes());
        return config.aggregation().idlenessMs() <= 0 ? kafka
                : BacklogAwareSource.of(kafka, starting, KafkaClients.clientProperties(config), KafkaClients.groupId(config, NAME));
    }

    /** {@code user-events} records decoded, or their dead letters (undecodable, or an implausible {@code occurred_at}). */
    public static DecodingDeserializer<UserEvent> eventDeserializer(SluiceConfig config) {
        TypeInformation<Decoded<UserEvent>> type = TypeInformation.of(new TypeHint<>() {
        });
        return new DecodingDeserializer<>(new RegistryDecoder<>(SluiceAvro.USER_EVENT, config.registry().url()), type,
                PlausibleEventTime.of(config.aggregation()));
    }

    /**
     * The compacted {@code campaigns} topic, read from its beginning whenever the job starts without state: the definitions
     * live in the job's broadcast state, so a start without it (allowed by {@code aggregation.allow-stateless-start}) must read
     * every definition again, not resume at the group's committed offsets past them. A restore reads on from its checkpoint.
     */
    public static Source<Decoded<Campaign>, ?, ?> campaignSource(SluiceConfig config, boolean bounded) {
        TypeInformation<Decoded<Campaign>> type = TypeInformation.of(new TypeHint<>() {
        });
        var deserializer = new DecodingDeserializer<>(new RegistryDecoder<>(SluiceAvro.CAMPAIGN, config.registry().url()), type);
        return KafkaIo.source(config, NAME, config.kafka().campaignsTopic(), deserializer, OffsetsInitializer.earliest(), bounded);
    }

    /**
     * Event time from {@code occurred_at}, bounded out-of-orderness and never ahead of the wall clock
     * ({@link WallClockCappedWatermarks}); a partition silent for {@code aggregation.idleness}
     * is ignored, but only while its subtask has no records pending when {@code events} says so ({@link BacklogAwareIdleness}).
     */
    static WatermarkStrategy<Decoded<UserEvent>> watermarks(SluiceConfig.Aggregation a, Source<Decoded<UserEvent>, ?, ?> events) {
        Duration bound = Duration.ofMillis(a.outOfOrdernessMs());
        WatermarkStrategy<Decoded<UserEvent>> w = WatermarkStrategy
                .<Decoded<UserEvent>>forGenerator(ctx -> new WallClockCappedWatermarks<>(bound))
                .withTimestampAssigner((d, kafkaTimestamp) -> d.value == null ? Long.MIN_VALUE : d.value.occurredAt());
        if (a.idlenessMs() <= 0) {
            return w;
        }
        Duration idleness = Duration.ofMillis(a.idlenessMs());
        return events instanceof BacklogAwareSource<?, ?> b ? new BacklogAwareIdleness<>(w, idleness, b.gate()) : w.withIdleness(idleness);
    }

    /** The pipeline, apart from the real sources and sinks so tests can pass their own. */
    public static void defineWorkflow(StreamExecutionEnvironment env, SluiceConfig config,
                                      Source<Decoded<UserEvent>, ?, ?> events, Source<Decoded<Campaign>, ?, ?> campaigns,
                                      Sink<WindowCount> rows, Sink<PushJob> pushQueue, Sink<DeadLetter> deadLetters) {
        SluiceConfig.Aggregation a = config.aggregation();
        SluiceJob.configure(env, config);
        if (a.parallelism() > 0) {
            env.setParallelism(a.parallelism());
        }
        SingleOutputStreamOperator<CountedEvent> valid = env
                .fromSource(events, watermarks(a, events), "user-events").uid("user-events-source")
                .process(new ValidateEvents(config.kafka().userEventsTopic(), a.windowMs(), a.allowedLatenessMs(), new StatelessStartGuard(
                        config, NAME, config.kafka().userEventsTopic(), a.allowStatelessStart(), "aggregation.allow-stateless-start",
                        "pushes already sent in open campaign windows would go out again, open windows would be counted from zero and queued pushes lost")))
                .uid("validate-events").name("validate events, decide lateness");
        SingleOutputStreamOperator<Campaign> definitions = env
                .fromSource(campaigns, new BroadcastWatermarks<>(), "campaigns").uid("campaigns-source")
                .process(new ValidateCampaigns(config.kafka().campaignsTopic()))
                .uid("validate-campaigns").name("validate campaigns");
        SingleOutputStreamOperator<WindowCount> counts = valid
                .transform("bundle per user and event name", EventBundle.TYPE,
                        new LocalEventBundles(a.windowMs(), Math.min(200, a.emitIntervalMs()), a.bufferMaxEntries()))
                .uid("bundle-events").name("bundle per user and event name")
                .keyBy(EventBundle::userKey)
                .connect(definitions.broadcast())
                .transform("count windows, detect segment entries", TypeInformation.of(WindowCount.class),
                        new UserActivityOperator(config.kafka().userEventsTopic(), a.windowMs(), a.allowedLatenessMs(), a.emitIntervalMs(), a.bufferMaxEntries()))
                .uid("user-activity");
        counts.sinkTo(rows).uid("upsert-window-counts").name("upsert window counts into shards");
        counts.getSideOutput(UserActivityOperator.PUSHES)
                .keyBy((PendingPush p) -> StateKeys.of(p.appId, p.campaignId))
                .transform("pace per campaign", TypeInformation.of(PushJob.class), new Pacer())
                .uid("pacer")
                .sinkTo(pushQueue).uid("push-queue-sink").name("push queue (exactly once)");

        CountDeadLetters.sinkTo(valid.getSideOutput(DeadLetter.SIDE_OUTPUT).union(definitions.getSideOutput(DeadLetter.SIDE_OUTPUT),
                counts.getSideOutput(DeadLetter.SIDE_OUTPUT)), deadLetters, "aggregation");
    }
}
