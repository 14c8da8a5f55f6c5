package io.sluice.jobs.aggregation;

import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
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
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * Keyed by {@code app_id:user_id}. In: partial counts of on-time events ({@link ValidateEvents}
 * decided lateness, {@link LocalWindowCounts} added them up before the shuffle).
 * Out: {@link WindowCount} rows — the running result of every window that changed, every
 * {@code emitIntervalMs}, and at once when the watermark passes the end of a window with new events
 * (the final result); an event within the allowed lateness updates its closed window and the row is
 * emitted again with the higher count.
 *
 * <p>Partials are first added up in a heap buffer per (user, name, window), and the buffer is folded
 * into keyed state ({@code MapState<name + window start, WindowAcc>}) when it is emitted: one state
 * read and write per changed window per emission instead of per event or partial. The buffer is emptied before
 * every checkpoint barrier and at end of input, so checkpoints never need it. A window's state and its
 * one cleanup timer go when the watermark passes its end plus the allowed lateness, the point after
 * which no event for it can arrive. Metrics: {@code eventsIn}, {@code rowsOut}, {@code bufferedWindows}, {@code stateKeys}
 * (users with a window in state; counted from this subtask's start, so it reads low after a restore).
 */
public class WindowCounter extends AbstractStreamOperator<WindowCount>
        implements OneInputStreamOperator<WindowPartial, WindowCount>, Triggerable<String, VoidNamespace>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final long windowMs;
    private final long allowedLatenessMs;
    private final long emitIntervalMs;
    private final int bufferMaxEntries;

    private transient MapState<String, WindowAcc> windows;
    private transient InternalTimerService<VoidNamespace> cleanup;
    private transient Map<Buffered, WindowAcc> buffer;
    private transient long minBufferedEnd;
    private transient Counter eventsIn;
    private transient Counter rowsOut;
    private transient long stateKeys;

    /** A window of one user and event name, with the ids needed to write its row. */
    private record Buffered(String userKey, String appId, String userId, String name, long windowStart) {
    }

    public WindowCounter(long windowMs, long allowedLatenessMs, long emitIntervalMs, int bufferMaxEntries) {
        this.windowMs = windowMs;
        this.allowedLatenessMs = allowedLatenessMs;
        this.emitIntervalMs = emitIntervalMs;
        this.bufferMaxEntries = bufferMaxEntries;
    }

    @Override
    public void open() throws Exception {
        super.open();
        windows = getRuntimeContext().getMapState(new MapStateDescriptor<>("windows", Types.STRING, TypeInformation.of(WindowAcc.class)));
        cleanup = getInternalTimerService("window-cleanup", VoidNamespaceSerializer.INSTANCE, this);
        buffer = new HashMap<>();
        minBufferedEnd = Long.MAX_VALUE;
        eventsIn = getMetricGroup().counter("eventsIn");
        rowsOut = getMetricGroup().counter("rowsOut");
        getMetricGroup().gauge("bufferedWindows", () -> buffer.size());
        getMetricGroup().gauge("stateKeys", () -> stateKeys);
        PeriodicFlush.schedule(getProcessingTimeService(), emitIntervalMs, this::emitChanged);
    }

    @Override
    public void processElement(StreamRecord<WindowPartial> element) throws Exception {
        WindowPartial p = element.getValue();
        eventsIn.inc(p.count);
        Buffered key = new Buffered((String) getCurrentKey(), p.appId, p.userId, p.name, p.windowStart);
        buffer.computeIfAbsent(key, k -> new WindowAcc()).add(p);
        minBufferedEnd = Math.min(minBufferedEnd, p.windowStart + windowMs);
        if (buffer.size() >= bufferMaxEntries) {
            emitChanged();
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (mark.getTimestamp() >= minBufferedEnd - 1) {
            emitChanged(); // a window with buffered events just closed: its final result goes out now
        }
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        emitChanged();
    }

    @Override
    public void endInput() throws Exception {
        emitChanged();
    }

    /** Folds the buffer into keyed state and emits the new total of every window it touched. */
    private void emitChanged() throws Exception {
        if (buffer.isEmpty()) {
            return;
        }
        for (Map.Entry<Buffered, WindowAcc> e : buffer.entrySet()) {
            Buffered b = e.getKey();
            WindowAcc delta = e.getValue();
            setCurrentKey(b.userKey());
            String stateKey = b.name() + '\u0000' + b.windowStart();
            WindowAcc total = windows.get(stateKey);
            if (total == null) {
                if (windows.isEmpty()) {
                    stateKeys++;
                }
                total = delta;
                cleanup.registerEventTimeTimer(VoidNamespace.INSTANCE, Windows.closesAt(b.windowStart(), windowMs, allowedLatenessMs));
            } else {
                total.add(delta);
            }
            windows.put(stateKey, total);
            rowsOut.inc();
            output.collect(new StreamRecord<>(new WindowCount(b.appId(), b.userId(), b.name(), b.windowStart(), b.windowStart() + windowMs,
                    total.count, total.sum, delta.count, total.newestAt, delta.partition)));
        }
        buffer.clear();
        minBufferedEnd = Long.MAX_VALUE;
    }

    /** The watermark passed a window's end plus the allowed lateness: it can no longer change, its state goes. */
    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        Iterator<Map.Entry<String, WindowAcc>> it = windows.iterator();
        while (it.hasNext()) {
            String stateKey = it.next().getKey();
            long start = Long.parseLong(stateKey.substring(stateKey.lastIndexOf('\u0000') + 1));
            if (Windows.closesAt(start, windowMs, allowedLatenessMs) <= timer.getTimestamp()) {
                it.remove();
            }
        }
        if (windows.isEmpty()) {
            windows.clear();
            stateKeys--;
        }
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
    }
}
