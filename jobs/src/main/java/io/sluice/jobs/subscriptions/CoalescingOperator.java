package io.sluice.jobs.subscriptions;

import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;

/**
 * Keyed by subscription. In: single-update deltas in offset order. Out: merged deltas. Updates to one
 * subscription are folded into a pending delta in keyed state and emitted once per flush: every
 * {@code flushIntervalMs} (one operator-wide timer, not one per key: a per-key timer costs two more
 * state-backend writes per subscription), when {@code maxPendingKeys} subscriptions are pending,
 * before every checkpoint barrier, and at end of input. Because everything pending is emitted before
 * each barrier, checkpoints hold no pending deltas and no timers. Deltas from different partitions are
 * never merged ({@link SubscriptionDelta#sameSource}). Metrics: {@code updatesIn}, {@code deltasOut}, {@code coalescingRatio}.
 */
public class CoalescingOperator extends AbstractStreamOperator<SubscriptionDelta>
        implements OneInputStreamOperator<SubscriptionDelta, SubscriptionDelta>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final long flushIntervalMs;
    private final int maxPendingKeys;

    private transient ValueState<SubscriptionDelta> pending;
    /** Subscriptions with a pending delta; empty at every barrier, so it needs no checkpointing. */
    private transient Set<String> dirty;
    private transient Counter updatesIn;
    private transient Counter deltasOut;

    public CoalescingOperator(long flushIntervalMs, int maxPendingKeys) {
        this.flushIntervalMs = flushIntervalMs;
        this.maxPendingKeys = maxPendingKeys;
    }

    @Override
    public void open() throws Exception {
        super.open();
        pending = getRuntimeContext().getState(new ValueStateDescriptor<>("pending-delta", SubscriptionDelta.class));
        dirty = new HashSet<>();
        updatesIn = getMetricGroup().counter("updatesIn");
        deltasOut = getMetricGroup().counter("deltasOut");
        getMetricGroup().gauge("coalescingRatio", () -> deltasOut.getCount() == 0 ? 0.0 : (double) updatesIn.getCount() / deltasOut.getCount());
        PeriodicFlush.schedule(getProcessingTimeService(), flushIntervalMs, this::flushAll);
    }


    @Override
    public void processElement(StreamRecord<SubscriptionDelta> element) throws Exception {
        SubscriptionDelta update = element.getValue();
        updatesIn.inc(update.updates);
        SubscriptionDelta current = pending.value();
        if (current == null) {
            current = update;
            dirty.add(current.key());
        } else if (current.sameSource(update)) {
            current.merge(update);
        } else { // a second partition for one subscription: not merged, so the shard's guard can refuse it
            emit(current);
            current = update;
        }
        pending.update(current);
        if (dirty.size() >= maxPendingKeys) {
            flushAll();
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flushAll();
    }

    @Override
    public void endInput() throws Exception {
        flushAll();
    }

    private void flushAll() throws Exception {
        for (String key : new ArrayList<>(dirty)) {
            setCurrentKey(key);
            SubscriptionDelta d = pending.value();
            if (d != null) {
                emit(d);
                pending.clear();
            }
        }
        dirty.clear();
    }

    private void emit(SubscriptionDelta d) {
        deltasOut.inc();
        output.collect(new StreamRecord<>(d));
    }
}
