package io.sluice.jobs.subscriptions;

import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Merges the updates of each subscription in a heap map and emits one delta per subscription per flush:
 * every {@code flushIntervalMs} (one operator-wide timer), when {@code maxKeys} subscriptions are
 * pending, before every checkpoint barrier, and at end of input. The map is empty at every barrier, so
 * the operator has no state: not in a state backend (each update would pay a read and a write there for
 * nothing) and not in checkpoints.
 *
 * <p>In: single-update deltas, each subscription's in offset order. That holds wherever it runs: chained to
 * the source (a source subtask reads whole partitions, and one subscription lives in one partition) and
 * after a {@code keyBy} on the subscription. Out: merged deltas, each subscription's in order. Updates of
 * one subscription from different sources are never merged ({@link SubscriptionDelta#sameSource}): the
 * pending delta goes out first and the new one starts, so the shard's guard can judge both.
 *
 * <p>With {@code counted}, it reports {@code updatesIn} (source updates, however many an incoming delta
 * merges), {@code deltasOut} and {@code coalescingRatio}; the job counts at exactly one coalescer, the
 * last before the sink.
 */
public class Coalescer extends AbstractStreamOperator<SubscriptionDelta>
        implements OneInputStreamOperator<SubscriptionDelta, SubscriptionDelta>, BoundedOneInput {
    private static final long serialVersionUID = 2L;

    private final long flushIntervalMs;
    private final int maxKeys;
    private final boolean counted;
    private transient Map<String, SubscriptionDelta> pending;
    private transient Counter updatesIn;
    private transient Counter deltasOut;

    public Coalescer(long flushIntervalMs, int maxKeys, boolean counted) {
        if (maxKeys < 1) {
            throw new IllegalArgumentException("maxKeys must be at least 1, was " + maxKeys);
        }
        this.flushIntervalMs = flushIntervalMs;
        this.maxKeys = maxKeys;
        this.counted = counted;
    }

    @Override
    public void open() throws Exception {
        super.open();
        pending = new LinkedHashMap<>();
        if (counted) {
            updatesIn = getMetricGroup().counter("updatesIn");
            deltasOut = getMetricGroup().counter("deltasOut");
            getMetricGroup().gauge("coalescingRatio", () -> deltasOut.getCount() == 0 ? 0.0 : (double) updatesIn.getCount() / deltasOut.getCount());
        }
        PeriodicFlush.schedule(getProcessingTimeService(), flushIntervalMs, this::flush);
    }

    @Override
    public void processElement(StreamRecord<SubscriptionDelta> element) {
        SubscriptionDelta d = element.getValue();
        if (counted) {
            updatesIn.inc(d.updates);
        }
        SubscriptionDelta before = pending.putIfAbsent(d.key(), d);
        if (before == null) {
            if (pending.size() >= maxKeys) {
                flush();
            }
        } else if (before.sameSource(d)) {
            before.merge(d);
        } else { // a second partition for one subscription: both go on, in order, for the shard's guard to judge
            emit(before);
            pending.put(d.key(), d);
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flush();
    }

    @Override
    public void endInput() {
        flush();
    }

    private void flush() {
        for (SubscriptionDelta d : pending.values()) {
            emit(d);
        }
        pending.clear();
    }

    private void emit(SubscriptionDelta d) {
        if (counted) {
            deltasOut.inc();
        }
        output.collect(new StreamRecord<>(d));
    }
}
