package io.sluice.jobs.campaigns;

import io.sluice.core.model.PushJob;
import io.sluice.core.model.StateKeys;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Keyed by (app, campaign). In: push jobs in the order their users entered the segment. Out: the same jobs,
 * in the same order, at most {@code max_per_second} per campaign: one job every
 * {@code 1000 / max_per_second} ms, none dropped, whatever the arrival pattern. The next free slot is kept
 * until it has passed, also when the queue runs empty before it (forgetting it let a job that arrived
 * just after a drained queue go at once, a slot too early). Flink fires a processing-time timer 1 ms
 * after its time at the earliest, so the slot grid tolerates that millisecond; a timer later than that
 * earns no catch-up (no burst after a pause or a restart), and campaigns faster than 1,000/s emit the
 * slots of the current millisecond together. A job that comes before its slot waits in a FIFO in
 * keyed state ({@code seq → job}, with head and tail counters) and drains on a processing-time timer;
 * a backlog in one campaign holds back no other campaign. The queue and its timer are part of every
 * checkpoint, so a restart resumes the drain where the checkpoint left it. At end of input every
 * queue is drained at once. Metrics: {@code app.<app_id>.campaign.<id>.queueDepth}, {@code pushJobsOut}.
 */
public class Pacer extends AbstractStreamOperator<PushJob>
        implements OneInputStreamOperator<PendingPush, PushJob>, Triggerable<String, VoidNamespace>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    /** How late Flink fires a processing-time timer at the earliest (it adds 1 ms so the timer's time has passed). */
    private static final long TIMER_DELAY_MICROS = 1000;

    /** {next free slot in µs of processing time, head seq, tail seq}. */
    private transient ValueState<long[]> pacing;
    private transient MapState<Long, PendingPush> queue;
    private transient InternalTimerService<VoidNamespace> timers;
    private transient Map<String, long[]> depthGauges;
    private transient Counter out;

    @Override
    public void open() throws Exception {
        super.open();
        pacing = getRuntimeContext().getState(new ValueStateDescriptor<>("pacing", TypeInformation.of(long[].class)));
        queue = getRuntimeContext().getMapState(new MapStateDescriptor<>("queue", Types.LONG, TypeInformation.of(PendingPush.class)));
        timers = getInternalTimerService("pacer", VoidNamespaceSerializer.INSTANCE, this);
        depthGauges = new HashMap<>();
        out = getMetricGroup().counter("pushJobsOut");
    }

    @Override
    public void processElement(StreamRecord<PendingPush> element) throws Exception {
        PendingPush job = element.getValue();
        long[] p = state();
        long nowMicros = timers.currentProcessingTime() * 1000;
        if (p[1] == p[2] && p[0] <= nowMicros) { // nothing waiting and the slot is free
            emit(job, p, nowMicros);
            timers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, ceilMillis(p[0])); // forgets the slot once it passed, if no job follows
        } else {
            queue.put(p[2]++, job);
            if (p[1] + 1 == p[2]) {
                timers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, ceilMillis(p[0]));
            }
        }
        pacing.update(p);
        depth((String) getCurrentKey(), job)[0] = p[2] - p[1];
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        long[] p = state();
        long nowMicros = timers.currentProcessingTime() * 1000;
        PendingPush head = p[1] < p[2] ? queue.get(p[1]) : null;
        PendingPush sample = head;
        if (head != null) { // a timer later than Flink's 1 ms (or a restart) earns no burst
            p[0] = Math.max(p[0], nowMicros - TIMER_DELAY_MICROS - Math.max(0, 1000 - intervalMicros(head)));
        }
        while (head != null && p[0] <= nowMicros) {
            queue.remove(p[1]++);
            emit(head, p, p[0]);
            head = p[1] < p[2] && p[0] <= nowMicros ? queue.get(p[1]) : null;
        }
        if (p[1] < p[2] || p[0] > nowMicros) { // jobs wait, or the last job's slot has not passed yet: keep the slot
            timers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, ceilMillis(p[0]));
            pacing.update(p);
        } else {
            pacing.clear(); // queue empty and its slot passed; the next job finds its slot from the clock
        }
        depth(timer.getKey(), sample)[0] = p[2] - p[1];
    }

    @Override
    public void endInput() throws Exception {
        List<String> keys = new ArrayList<>();
        this.<String>getKeyedStateBackend().getKeys("pacing", VoidNamespace.INSTANCE).forEach(keys::add);
        for (String key : keys) {
            setCurrentKey(key);
            long[] p = state();
            PendingPush sample = null;
            while (p[1] < p[2]) {
                PendingPush job = queue.get(p[1]);
                queue.remove(p[1]++);
                output(job);
                sample = job;
            }
            pacing.clear();
            depth(key, sample)[0] = 0;
        }
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) {
    }

    /** Emits the job in the slot starting at {@code slotMicros} and moves the next slot on by the campaign's interval. */
    private void emit(PendingPush job, long[] p, long slotMicros) {
        p[0] = slotMicros + intervalMicros(job);
        output(job);
    }

    private static long intervalMicros(PendingPush job) {
        return 1_000_000L / Math.max(1, job.maxPerSecond);
    }

    private void output(PendingPush job) {
        out.inc();
        output.collect(new StreamRecord<>(job.toPushJob()));
    }

    private long[] state() throws Exception {
        long[] p = pacing.value();
        return p == null ? new long[3] : p;
    }

    private static long ceilMillis(long micros) {
        return (micros + 999) / 1000;
    }

    /**
     * The queue-depth gauge of a campaign ({@code app.<app_id>.campaign.<campaign_id>.queueDepth}), registered the first
     * time this subtask sees one of its jobs ({@code sample}); before that, a gauge nobody reads.
     */
    private long[] depth(String key, PendingPush sample) {
        long[] d = depthGauges.get(key);
        if (d == null) {
            d = new long[1];
            if (sample != null) {
                long[] gauge = d;
                // a queue restored under the campaign id alone (builds before queues were per app) drains beside the new one
                String name = key.equals(StateKeys.of(sample.appId, sample.campaignId)) ? "queueDepth" : "queueDepthBeforeUpgrade";
                getMetricGroup().addGroup("app", sample.appId).addGroup("campaign", sample.campaignId).gauge(name, () -> gauge[0]);
                depthGauges.put(key, d);
            }
        }
        return d;
    }
}
