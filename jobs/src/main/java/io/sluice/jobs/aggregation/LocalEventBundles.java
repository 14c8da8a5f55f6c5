package io.sluice.jobs.aggregation;

import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Chained before the shuffle (not keyed). In: on-time events. Out: one {@link EventBundle} per (user,
 * event name, source partition) seen since the last flush, events in arrival order, bundles in the order of their first
 * event — so segment detection downstream sees every user's events in order (and users enter
 * segments in the order they arrived, up to one flush interval), while the shuffle carries far less. Flushes every
 * {@code intervalMs}, at {@code maxBundles}, before every checkpoint barrier (so it holds no state),
 * at end of input, and before forwarding a watermark that closes the window of a bundled event (so
 * final results are not held back). Metrics: {@code eventsIn}, {@code bundlesOut}.
 */
public class LocalEventBundles extends AbstractStreamOperator<EventBundle>
        implements OneInputStreamOperator<CountedEvent, EventBundle>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final long windowMs;
    private final long intervalMs;
    private final int maxBundles;

    private transient Map<Key, EventBundle> buffer;
    private transient long minBufferedEnd;
    private transient Counter eventsIn;
    private transient Counter bundlesOut;

    /** With the partition: a bundle's events share one, so each keeps its source position. */
    private record Key(String appId, String userId, String name, int partition) {
    }

    public LocalEventBundles(long windowMs, long intervalMs, int maxBundles) {
        this.windowMs = windowMs;
        this.intervalMs = intervalMs;
        this.maxBundles = maxBundles;
    }

    @Override
    public void open() throws Exception {
        super.open();
        buffer = new LinkedHashMap<>(); // bundles go out in the order of their first event
        minBufferedEnd = Long.MAX_VALUE;
        eventsIn = getMetricGroup().counter("eventsIn");
        bundlesOut = getMetricGroup().counter("bundlesOut");
        PeriodicFlush.schedule(getProcessingTimeService(), intervalMs, this::flush);
    }

    @Override
    public void processElement(StreamRecord<CountedEvent> element) throws Exception {
        CountedEvent e = element.getValue();
        eventsIn.inc();
        buffer.computeIfAbsent(new Key(e.appId, e.userId, e.name, e.partition), k -> EventBundle.of(e)).add(e);
        minBufferedEnd = Math.min(minBufferedEnd, Windows.start(e.occurredAt, windowMs) + windowMs);
        if (buffer.size() >= maxBundles) {
            flush();
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (mark.getTimestamp() >= minBufferedEnd - 1) {
            flush();
        }
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flush();
    }

    @Override
    public void endInput() throws Exception {
        flush();
    }

    private void flush() {
        for (EventBundle b : buffer.values()) {
            output.collect(new StreamRecord<>(b.trimmed()));
        }
        bundlesOut.inc(buffer.size());
        buffer.clear();
        minBufferedEnd = Long.MAX_VALUE;
    }
}
