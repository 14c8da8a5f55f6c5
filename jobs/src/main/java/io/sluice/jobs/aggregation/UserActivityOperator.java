package io.sluice.jobs.aggregation;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.UserEvent;
import io.sluice.jobs.campaigns.ValidateCampaigns;
import io.sluice.jobs.campaigns.PendingPush;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Fatal;
import io.sluice.jobs.common.Json;
import io.sluice.jobs.common.PeriodicFlush;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.BroadcastState;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.runtime.state.internal.InternalValueState;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedMultiInput;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.OutputTag;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The keyed heart of the aggregation job, keyed by {@code app_id:user_id}; one operator so every event
 * crosses the network once. In 1: on-time events, bundled per (user, event name) in arrival order
 * ({@link ValidateEvents} decided lateness, {@link LocalEventBundles} bundled them). In 2:
 * campaign definitions, broadcast, kept in broadcast state (they survive restarts; a new definition
 * replaces the old one at once). Out: {@link WindowCount} rows; to {@link #PUSHES}: {@link PendingPush}es.
 *
 * <p><b>Window counts.</b> Events are added up in a heap buffer per (user, window), per event name, and folded
 * into keyed state (a {@link UserWindow} per user in the namespace of the window start) when emitted: before every checkpoint barrier,
 * on a timer every {@code emitIntervalMs} unless a barrier emitted within that interval, at once when the watermark passes
 * the end of a window with buffered events (the final result), and at end of input. The buffer is
 * empty at every barrier, so checkpoints never need it. One state read and write per user and changed
 * window per emission instead of per event. An event within the allowed lateness re-emits its closed
 * window with the higher count. A window's state and its cleanup timer go once the watermark has passed
 * its end plus the allowed lateness ({@link Windows#closesAt}), spread over up to one more window by key
 * hash so that a million users' windows closing together do not stall the operator.
 *
 * <p><b>Segment entry.</b> A user enters a campaign's segment when their count of its
 * {@code event_name} within one campaign window (tumbling, the campaign's {@code window}) reaches
 * {@code min_count}: one push, however many events follow; inactive campaigns count nothing. State:
 * {@code campaign id + window start → {count or SENT, window end}}, cleaned once no event for that
 * campaign window can pass the lateness rule any more.
 *
 * <p><b>The lateness floor.</b> This operator is the final judge of lateness. It keeps, in union operator state, the
 * newest watermark it has processed (the "cleaned up to" mark: no window or segment entry closing at or before it is
 * still in state, or can come back) together with the window size and allowed lateness it judged with. After a
 * restore, or while an upstream subtask's own watermark is stale (it just came back from idle), {@link ValidateEvents}
 * may let through an event whose window this operator already finalized and cleaned: it is a {@code late} dead letter
 * here, with its source position from the bundle (per-event offsets), and neither recreates the window nor counts
 * toward a segment. A restore with another window size or allowed lateness is refused: the state was cut by the old ones.
 * Snapshots of builds without the floor restore with no floor (the old behaviour until the first watermark).
 *
 * <p>Metrics: {@code eventsIn}, {@code lateEvents} (events dead-lettered here, behind the floor), {@code rowsOut}, {@code bufferedWindows} ((user, window) entries buffered),
 * {@code stateWindows} ((user, event name, window) counts in state, counted from this subtask's start, so it reads low after a restore),
 * {@code activeCampaigns}, {@code campaignUpdates} (definitions and tombstones applied), {@code pushJobs}.
 */
public class UserActivityOperator extends AbstractStreamOperator<WindowCount>
        implements TwoInputStreamOperator<EventBundle, Campaign, WindowCount>, BoundedMultiInput {
    private static final long serialVersionUID = 1L;

    public static final OutputTag<PendingPush> PUSHES = new OutputTag<>("push-jobs") {
    };
    public static final MapStateDescriptor<String, Campaign> CAMPAIGNS =
            new MapStateDescriptor<>("campaigns", Types.STRING, TypeInformation.of(Campaign.class));
    /** Marks a (campaign, window) whose push already went out. */
    static final long SENT = -1;
    /** Format of the {@code lateness-floor} entries: {format, window ms, allowed lateness ms, floor}. */
    static final long FLOOR_FORMAT = 1;
    private static final ListStateDescriptor<long[]> FLOOR = new ListStateDescriptor<>("lateness-floor", long[].class);

    private final String topic;
    private final long windowMs;
    private final long allowedLatenessMs;
    private final long emitIntervalMs;
    private final int bufferMaxEntries;

    // window counts
    private transient InternalValueState<String, Long, UserWindow> windows;
    private transient InternalTimerService<Long> windowCleanup;
    private transient Map<Buffered, UserWindow> buffer;
    private transient long minBufferedEnd;
    private transient long lastEmittedAt;
    private transient long stateWindows;
    private transient Counter eventsIn;
    private transient Counter rowsOut;
    private transient Counter lateEvents;
    private transient ListState<long[]> floorState;
    /** The newest finite watermark processed here or restored: windows closing at or before it are final. */
    private transient long floor;

    // segments
    private transient BroadcastState<String, Campaign> campaigns;
    private transient Map<String, List<Campaign>> activeByApp;
    private transient MapState<String, long[]> segments;
    private transient InternalTimerService<VoidNamespace> segmentCleanup;
    private transient volatile int active;
    private transient Counter pushJobs;
    private transient Counter campaignUpdates;

    /** A window of one user, with the ids needed to write its rows. */
    private record Buffered(String userKey, String appId, String userId, long windowStart) {
    }

    /** {@code topic}: the events' source topic, named in the dead letters of late events. */
    public UserActivityOperator(String topic, long windowMs, long allowedLatenessMs, long emitIntervalMs, int bufferMaxEntries) {
        this.topic = topic;
        this.windowMs = windowMs;
        this.allowedLatenessMs = allowedLatenessMs;
        this.emitIntervalMs = emitIntervalMs;
        this.bufferMaxEntries = bufferMaxEntries;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        floorState = context.getOperatorStateStore().getUnionListState(FLOOR);
        floor = Long.MIN_VALUE;
        for (long[] entry : floorState.get()) {
            if (entry[0] != FLOOR_FORMAT) {
                throw Fatal.stop("the lateness floor in the restored state of operator user-activity has format " + entry[0]
                        + "; this build reads format " + FLOOR_FORMAT + ". Restore with the build that wrote it, or start without state");
            }
            if (entry[1] != windowMs || entry[2] != allowedLatenessMs) {
                throw Fatal.stop("the restored state of operator user-activity was written with aggregation.window " + entry[1]
                        + " ms and aggregation.allowed-lateness " + entry[2] + " ms; this job has " + windowMs + " ms and " + allowedLatenessMs
                        + " ms. Windows in state were cut and cleaned by the old settings, so counting on would corrupt rows: "
                        + "restore with the old settings, or start the changed job without state (docs/aggregation.md, changing windows)");
            }
            floor = Math.max(floor, entry[3]);
        }
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        floorState.update(List.of(new long[] {FLOOR_FORMAT, windowMs, allowedLatenessMs, floor}));
    }

    @Override
    public void open() throws Exception {
        super.open();
        // one value per (user; window start), the namespace: a closed window is one delete, no scan
        windows = (InternalValueState<String, Long, UserWindow>) getOrCreateKeyedState(LongSerializer.INSTANCE,
                new ValueStateDescriptor<>("user-windows", UserWindow.TYPE));
        windowCleanup = getInternalTimerService("user-window-cleanup", LongSerializer.INSTANCE, new Triggerable<String, Long>() {
            @Override
            public void onEventTime(InternalTimer<String, Long> timer) throws Exception {
                windows.setCurrentNamespace(timer.getNamespace()); // the window can no longer change
                UserWindow w = windows.value();
                if (w != null) {
                    stateWindows -= w.size;
                    windows.clear();
                }
            }

            @Override
            public void onProcessingTime(InternalTimer<String, Long> timer) {
            }
        });
        buffer = new HashMap<>();
        minBufferedEnd = Long.MAX_VALUE;
        eventsIn = getMetricGroup().counter("eventsIn");
        rowsOut = getMetricGroup().counter("rowsOut");
        lateEvents = getMetricGroup().counter("lateEvents");
        getMetricGroup().gauge("latenessFloor", () -> floor);
        getMetricGroup().gauge("bufferedWindows", () -> buffer.size());
        getMetricGroup().gauge("stateWindows", () -> stateWindows);
        PeriodicFlush.schedule(getProcessingTimeService(), emitIntervalMs, () -> {
            if (getProcessingTimeService().getCurrentProcessingTime() - lastEmittedAt >= emitIntervalMs * 9 / 10) {
                emitChanged();
            }
        });

        campaigns = getOperatorStateBackend().getBroadcastState(CAMPAIGNS);
        rekeyCampaigns();
        index();
        // value: {count or SENT, campaign window end}
        segments = getRuntimeContext().getMapState(new MapStateDescriptor<>("segment-progress", Types.STRING, TypeInformation.of(long[].class)));
        segmentCleanup = getInternalTimerService("segment-cleanup", VoidNamespaceSerializer.INSTANCE, new Triggerable<String, VoidNamespace>() {
            @Override
            public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
                dropClosedSegments(timer.getTimestamp());
            }

            @Override
            public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
            }
        });
        pushJobs = getMetricGroup().counter("pushJobs");
        getMetricGroup().gauge("activeCampaigns", () -> active);
        campaignUpdates = getMetricGroup().counter("campaignUpdates");
    }

    @Override
    public void processElement1(StreamRecord<EventBundle> element) throws Exception {
        EventBundle b = element.getValue();
        List<Campaign> candidates = activeByApp.get(b.appId);
        for (int i = 0; i < b.size; i++) {
            if (Windows.isLate(b.times[i], windowMs, allowedLatenessMs, floor)) {
                late(b, i);
                continue;
            }
            count(b, i);
            if (candidates != null) {
                detect(candidates, b.userId, b.name, b.times[i]);
            }
        }
        if (buffer.size() >= bufferMaxEntries) {
            emitChanged(); // last: it moves the key context to other users
        }
    }

    @Override
    public void processElement2(StreamRecord<Campaign> element) throws Exception {
        Campaign c = element.getValue();
        if (ValidateCampaigns.isTombstone(c)) {
            if (c.appId().isEmpty()) { // a tombstone keyed by the campaign id alone (before keys named the app): that id in every app
                List<String> gone = new ArrayList<>();
                for (Map.Entry<String, Campaign> e : campaigns.immutableEntries()) {
                    if (e.getValue().campaignId().equals(c.campaignId())) {
                        gone.add(e.getKey());
                    }
                }
                for (String k : gone) {
                    campaigns.remove(k);
                }
            } else {
                campaigns.remove(c.stateKey());
            }
        } else {
            campaigns.put(c.stateKey(), c);
        }
        index();
        campaignUpdates.inc();
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (mark.getTimestamp() >= minBufferedEnd - 1) {
            emitChanged(); // a window with buffered events just closed: its final result goes out now
        }
        if (mark.getTimestamp() != Long.MAX_VALUE) { // end of input (or a drain) is no event time to judge later events by
            floor = Math.max(floor, mark.getTimestamp());
        }
        super.processWatermark(mark);
    }

    /** An event behind the floor: its window may be gone from state, so it is a dead letter, never a new count. */
    private void late(EventBundle b, int i) {
        lateEvents.inc();
        long t = b.times[i];
        long start = Windows.start(t, windowMs);
        Map<String, String> event = new LinkedHashMap<>();
        event.put("app_id", b.appId);
        event.put("user_id", b.userId);
        event.put("name", b.name);
        event.put("occurred_at", Long.toString(t));
        event.put("value", Double.toString(b.values[i]));
        String reason = "late by " + (floor - t) + " ms: occurred_at " + Instant.ofEpochMilli(t) + " is behind the window-count operator's"
                + " lateness floor " + Instant.ofEpochMilli(floor) + " (the newest watermark it finalized windows at, kept across restores);"
                + " its window " + Instant.ofEpochMilli(start) + "/" + Instant.ofEpochMilli(start + windowMs) + " took events until "
                + Instant.ofEpochMilli(Windows.closesAt(t, windowMs, allowedLatenessMs)) + " (aggregation.allowed-lateness " + allowedLatenessMs + " ms)";
        output.collect(DeadLetter.SIDE_OUTPUT, new StreamRecord<>(new DeadLetter(topic,
                b.partition, b.offsets[i], UserEvent.keyOf(b.appId, b.userId).getBytes(StandardCharsets.UTF_8), Json.object(event).getBytes(StandardCharsets.UTF_8),
                "late", reason), t));
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        emitChanged();
    }

    @Override
    public void endInput(int inputId) throws Exception {
        if (inputId == 1) {
            emitChanged();
        }
    }

    // ---- window counts ----

    private void count(EventBundle b, int i) {
        eventsIn.inc();
        long start = Windows.start(b.times[i], windowMs);
        buffer.computeIfAbsent(new Buffered((String) getCurrentKey(), b.appId, b.userId, start), k -> new UserWindow())
                .of(b.name).add(b.times[i], b.values[i], b.partition, b.offsets[i]);
        minBufferedEnd = Math.min(minBufferedEnd, start + windowMs);
    }

    /** Folds the buffer into keyed state and emits the new total of every window it touched. */
    private void emitChanged() throws Exception {
        lastEmittedAt = getProcessingTimeService().getCurrentProcessingTime();
        if (buffer.isEmpty()) {
            return;
        }
        for (Map.Entry<Buffered, UserWindow> e : buffer.entrySet()) {
            Buffered b = e.getKey();
            UserWindow delta = e.getValue();
            setCurrentKey(b.userKey());
            windows.setCurrentNamespace(b.windowStart());
            UserWindow total = windows.value();
            if (total == null) {
                total = new UserWindow();
                windowCleanup.registerEventTimeTimer(b.windowStart(), Windows.closesAt(b.windowStart(), windowMs, allowedLatenessMs) + spread(b.userKey()));
            }
            int namesBefore = total.size;
            for (int i = 0; i < delta.size; i++) {
                WindowAcc changed = delta.accs[i];
                WindowAcc sum = total.of(delta.names[i]);
                sum.add(changed);
                rowsOut.inc();
                output.collect(new StreamRecord<>(new WindowCount(b.appId(), b.userId(), delta.names[i], b.windowStart(), b.windowStart() + windowMs,
                        sum.count, sum.sum, changed.count, sum.newestAt, changed.partition, changed.offset)));
            }
            stateWindows += total.size - namesBefore;
            windows.update(total);
        }
        buffer.clear();
        minBufferedEnd = Long.MAX_VALUE;
    }

    /**
     * How long after its window can no longer change a user's state goes: up to one window, by the
     * key's hash. Every user's window closes at the same watermark; cleaning a million users at that
     * one moment would stall the operator for seconds, spread over a window it costs a little each second.
     */
    private long spread(String userKey) {
        return Math.floorMod(userKey.hashCode(), windowMs);
    }

    // ---- segments ----

    private void detect(List<Campaign> candidates, String userId, String name, long occurredAt) throws Exception {
        for (Campaign c : candidates) {
            if (!c.eventName().equals(name)) {
                continue;
            }
            long start = Windows.start(occurredAt, c.windowMs());
            String key = c.campaignId() + '\u0000' + start;
            long[] p = segments.get(key);
            if (p == null) {
                p = new long[] {0, start + c.windowMs()};
                segmentCleanup.registerEventTimeTimer(VoidNamespace.INSTANCE, segmentClosesAt(p[1]) + spread((String) getCurrentKey()));
            }
            if (p[0] == SENT) {
                continue;
            }
            p[0]++;
            if (p[0] >= c.minCount()) {
                p[0] = SENT;
                pushJobs.inc();
                output.collect(PUSHES, new StreamRecord<>(PendingPush.of(c, userId, start, occurredAt)));
            }
            segments.put(key, p);
        }
    }

    /**
     * The last watermark at which an event of a campaign window ending at {@code campaignWindowEnd} can
     * still pass {@link ValidateEvents}: its aggregation window may end up to one aggregation window
     * later, plus the allowed lateness.
     */
    private long segmentClosesAt(long campaignWindowEnd) {
        return campaignWindowEnd + windowMs + allowedLatenessMs - 1;
    }

    private void dropClosedSegments(long watermark) throws Exception {
        if (watermark == Long.MAX_VALUE) {
            segments.clear();
            return;
        }
        boolean left = false;
        Iterator<Map.Entry<String, long[]>> it = segments.iterator();
        while (it.hasNext()) {
            if (segmentClosesAt(it.next().getValue()[1]) <= watermark) {
                it.remove();
            } else {
                left = true;
            }
        }
        if (!left) {
            segments.clear();
        }
    }

    /**
     * Broadcast state of builds that keyed campaigns by id alone (two apps' campaigns of one id overwrote each other)
     * is keyed again by (app, campaign) when it is restored.
     */
    private void rekeyCampaigns() throws Exception {
        Map<String, Campaign> moved = new HashMap<>();
        for (Map.Entry<String, Campaign> e : campaigns.immutableEntries()) {
            if (!e.getKey().equals(e.getValue().stateKey())) {
                moved.put(e.getKey(), e.getValue());
            }
        }
        for (String old : moved.keySet()) { // all removed before any is put: an old key can be another campaign's new key
            campaigns.remove(old);
        }
        for (Campaign c : moved.values()) {
            campaigns.put(c.stateKey(), c);
        }
    }

    /** Active campaigns by app, rebuilt whenever a definition changes (and at start, from restored state). */
    private void index() throws Exception {
        Map<String, List<Campaign>> byApp = new HashMap<>();
        int n = 0;
        for (Map.Entry<String, Campaign> e : campaigns.immutableEntries()) {
            if (e.getValue().active()) {
                byApp.computeIfAbsent(e.getValue().appId(), k -> new ArrayList<>()).add(e.getValue());
                n++;
            }
        }
        activeByApp = byApp;
        active = n;
    }
}
