package io.sluice.jobs.aggregation;

import io.sluice.core.model.UserEvent;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import io.sluice.jobs.common.FieldLimits;
import io.sluice.jobs.common.StatelessStartGuard;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

import java.time.Instant;

/**
 * Chained to the {@code user-events} source. In: decoded events or decode failures. Out: on-time
 * {@link CountedEvent}s; to {@link DeadLetter#SIDE_OUTPUT}: decode failures (stage {@code decode}), events
 * with a missing id or name (stage {@code validate}), and events whose window has stopped taking
 * events (stage {@code late}, reason {@code late by N ms: ...}, N = watermark − occurred_at).
 *
 * <p>Lateness is decided here, against this subtask's watermark, and only here: the keyed operators
 * downstream see a watermark no newer than this one, so an event let through is never late for them,
 * and the window counts and the segment detector count exactly the same events.
 * Refuses a start without state where the job's consumer group has committed offsets ({@link StatelessStartGuard}).
 * Metrics: {@code deadLetters}, {@code lateEvents}.
 */
public class ValidateEvents extends ProcessFunction<Decoded<UserEvent>, CountedEvent> implements CheckpointedFunction {
    private final String topic;
    private final long windowMs;
    private final long allowedLatenessMs;
    private final StatelessStartGuard statelessStart;
    private transient Counter deadLetters;
    private transient Counter lateEvents;

    /** {@code statelessStart}: checked when the state is initialized, by every subtask; null checks nothing. */
    public ValidateEvents(String topic, long windowMs, long allowedLatenessMs, StatelessStartGuard statelessStart) {
        this.topic = topic;
        this.windowMs = windowMs;
        this.allowedLatenessMs = allowedLatenessMs;
        this.statelessStart = statelessStart;
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        if (statelessStart != null) { // every subtask, before its first record: none counts or pushes before a refusal
            statelessStart.check(context.isRestored());
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) {
    }

    @Override
    public void open(OpenContext ctx) {
        deadLetters = getRuntimeContext().getMetricGroup().counter("deadLetters");
        lateEvents = getRuntimeContext().getMetricGroup().counter("lateEvents");
    }

    @Override
    public void processElement(Decoded<UserEvent> in, Context ctx, Collector<CountedEvent> out) {
        if (in.deadLetter != null) {
            deadLetters.inc();
            ctx.output(DeadLetter.SIDE_OUTPUT, in.deadLetter);
            return;
        }
        UserEvent e = in.value;
        String problem = problem(e);
        if (problem != null) {
            deadLetters.inc();
            ctx.output(DeadLetter.SIDE_OUTPUT, new DeadLetter(topic, in.partition, in.offset, in.key, in.raw, "validate", problem));
            return;
        }
        long watermark = ctx.timerService().currentWatermark();
        if (Windows.isLate(e.occurredAt(), windowMs, allowedLatenessMs, watermark)) {
            deadLetters.inc();
            lateEvents.inc();
            long start = Windows.start(e.occurredAt(), windowMs);
            ctx.output(DeadLetter.SIDE_OUTPUT, new DeadLetter(topic, in.partition, in.offset, in.key, in.raw, "late",
                    "late by " + (watermark - e.occurredAt()) + " ms: occurred_at " + Instant.ofEpochMilli(e.occurredAt())
                            + " is behind the watermark " + Instant.ofEpochMilli(watermark) + "; its window " + Instant.ofEpochMilli(start)
                            + "/" + Instant.ofEpochMilli(start + windowMs) + " took events until "
                            + Instant.ofEpochMilli(Windows.closesAt(e.occurredAt(), windowMs, allowedLatenessMs))
                            + " (aggregation.allowed-lateness " + allowedLatenessMs + " ms)"));
            return;
        }
        out.collect(CountedEvent.of(e, in.partition, in.offset));
    }

    static String problem(UserEvent e) {
        if (e.appId() == null || e.appId().isBlank()) {
            return "missing app_id";
        }
        if (e.userId() == null || e.userId().isBlank()) {
            return "missing user_id";
        }
        if (e.name() == null || e.name().isBlank()) {
            return "missing name";
        }
        String tooLong = FieldLimits.tooLong("app_id", e.appId(), FieldLimits.MAX_ID_CHARS);
        tooLong = tooLong != null ? tooLong : FieldLimits.tooLong("user_id", e.userId(), FieldLimits.MAX_ID_CHARS);
        tooLong = tooLong != null ? tooLong : FieldLimits.tooLong("name", e.name(), FieldLimits.MAX_ID_CHARS);
        if (tooLong != null) {
            return tooLong;
        }
        if (e.value() != null && (e.value().isNaN() || e.value().isInfinite())) {
            return "value is " + e.value() + ", expected a finite number";
        }
        return null;
    }
}
