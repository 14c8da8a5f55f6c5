package io.sluice.jobs.aggregation;

import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.HashMap;
import java.util.Map;

/**
 * Chained before the shuffle (not keyed). In: on-time events. Out: {@link WindowPartial}s — the
 * events of one (user, name, window) seen since the last emission, added up — so the shuffle to
 * {@link WindowCounter} carries one record per active window instead of one per event (Flink SQL's
 * local/global aggregation). Emits every {@code intervalMs}, at {@code maxEntries}, before every
 * checkpoint barrier (so it holds no state), at end of input, and before forwarding a watermark
 * that closes a buffered window (so final results are not held back).
 * Metrics: {@code eventsIn}, {@code partialsOut}.
 */
public class LocalWindowCounts extends AbstractStreamOperator<WindowPartial>
        implements OneInputStreamOperator<CountedEvent, WindowPartial>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final long windowMs;
    private final long intervalMs;
    private final int maxEntries;

    private transient Map<Key, WindowPartial> buffer;
    private transient long minBufferedEnd;
    private transient Counter eventsIn;
    private transient Counter partialsOut;

    private record Key(String appId, String userId, String name, long windowStart) {
    }

    public LocalWindowCounts(long windowMs, long intervalMs, int maxEntries) {
        this.windowMs = windowMs;
        this.intervalMs = intervalMs;
        this.maxEntries = maxEntries;
    }

    @Override
    public void open() throws Exception {
        super.open();
        buffer = new HashMap<>();
        minBufferedEnd = Long.MAX_VALUE;
        eventsIn = getMetricGroup().counter("eventsIn");
        partialsOut = getMetricGroup().counter("partialsOut");
        PeriodicFlush.schedule(getProcessingTimeService(), intervalMs, this::emitAll);
    }

    @Override
    public void processElement(StreamRecord<CountedEvent> element) throws Exception {
        CountedEvent e = element.getValue();
        eventsIn.inc();
        long start = Windows.start(e.occurredAt, windowMs);
        buffer.computeIfAbsent(new Key(e.appId, e.userId, e.name, start), k -> WindowPartial.of(e, start)).add(e);
        minBufferedEnd = Math.min(minBufferedEnd, start + windowMs);
        if (buffer.size() >= maxEntries) {
            emitAll();
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (mark.getTimestamp() >= minBufferedEnd - 1) {
            emitAll();
        }
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        emitAll();
    }

    @Override
    public void endInput() throws Exception {
        emitAll();
    }

    private void emitAll() {
        for (WindowPartial p : buffer.values()) {
            output.collect(new StreamRecord<>(p));
        }
        partialsOut.inc(buffer.size());
        buffer.clear();
        minBufferedEnd = Long.MAX_VALUE;
    }
}
