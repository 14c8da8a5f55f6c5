package io.sluice.jobs.subscriptions;

import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Pre-coalescing before the shuffle, chained to the source (Flink SQL's local/global mini-batch
 * pattern). In: single-update deltas, each subscription's in offset order (a source subtask reads
 * whole partitions, and the topic is keyed by app). Out: the same updates merged per subscription in
 * a small heap bundle, emitted when {@code maxKeys} subscriptions are buffered, every
 * {@code flushIntervalMs}, before every checkpoint barrier and at end of input, so the bundle is empty
 * at every checkpoint and needs no state. A hot key's burst crosses the network and the keyed state
 * once per bundle instead of once per update. Updates from different partitions are never merged
 * ({@link SubscriptionDelta#sameSource}).
 */
public class LocalCoalescer extends AbstractStreamOperator<SubscriptionDelta>
        implements OneInputStreamOperator<SubscriptionDelta, SubscriptionDelta>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final long flushIntervalMs;
    private final int maxKeys;
    private transient Map<String, SubscriptionDelta> bundle;

    public LocalCoalescer(long flushIntervalMs, int maxKeys) {
        this.flushIntervalMs = flushIntervalMs;
        this.maxKeys = maxKeys;
    }

    @Override
    public void open() throws Exception {
        super.open();
        bundle = new LinkedHashMap<>();
        PeriodicFlush.schedule(getProcessingTimeService(), flushIntervalMs, this::flush);
    }


    @Override
    public void processElement(StreamRecord<SubscriptionDelta> element) {
        SubscriptionDelta d = element.getValue();
        SubscriptionDelta before = bundle.get(d.key());
        if (before == null) {
            bundle.put(d.key(), d);
            if (bundle.size() >= maxKeys) {
                flush();
            }
        } else if (before.sameSource(d)) {
            before.merge(d);
        } else { // a second partition for one subscription: both go on, in order, for the shard's guard to judge
            output.collect(new StreamRecord<>(before));
            bundle.put(d.key(), d);
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
        for (SubscriptionDelta d : bundle.values()) {
            output.collect(new StreamRecord<>(d));
        }
        bundle.clear();
    }
}
