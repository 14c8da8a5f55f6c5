package io.sluice.jobs.campaigns;

import io.sluice.core.model.Campaign;
import io.sluice.jobs.aggregation.CountedEvent;
import io.sluice.jobs.aggregation.Windows;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.BroadcastState;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ReadOnlyBroadcastState;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.co.KeyedBroadcastProcessFunction;
import org.apache.flink.util.Collector;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Keyed by {@code app_id:user_id}. In: on-time events, and campaign definitions (broadcast, kept in
 * broadcast state so they survive restarts; a new definition replaces the old one at once). Out: a
 * {@link PendingPush} when a user's count of the campaign's {@code event_name} within one campaign
 * window (tumbling, {@code window} ms, aligned to the epoch) reaches {@code min_count} — once per
 * (campaign, user, window), however many events follow; inactive campaigns count nothing.
 *
 * <p>State per user: {@code campaign id + window start → progress} (count, or "sent"), cleaned by an
 * event-time timer once the watermark is past the campaign window's end plus the aggregation window and
 * allowed lateness (after that {@link io.sluice.jobs.aggregation.ValidateEvents} lets no event for it
 * through). Metrics: {@code activeCampaigns}, {@code pushJobs}.
 */
public class SegmentDetector extends KeyedBroadcastProcessFunction<String, CountedEvent, Campaign, PendingPush> {
    public static final MapStateDescriptor<String, Campaign> CAMPAIGNS =
            new MapStateDescriptor<>("campaigns", Types.STRING, TypeInformation.of(Campaign.class));
    /** Marks a (campaign, window) whose push already went out. */
    static final long SENT = -1;

    private final long aggregationWindowMs;
    private final long allowedLatenessMs;
    private transient MapState<String, long[]> progress;
    private transient Map<String, List<Campaign>> activeByApp;
    private transient volatile int active;
    private transient Counter pushJobs;

    public SegmentDetector(long aggregationWindowMs, long allowedLatenessMs) {
        this.aggregationWindowMs = aggregationWindowMs;
        this.allowedLatenessMs = allowedLatenessMs;
    }

    @Override
    public void open(OpenContext ctx) {
        // value: {count or SENT, campaign window end}
        progress = getRuntimeContext().getMapState(new MapStateDescriptor<>("segment-progress", Types.STRING,
                TypeInformation.of(long[].class)));
        pushJobs = getRuntimeContext().getMetricGroup().counter("pushJobs");
        getRuntimeContext().getMetricGroup().gauge("activeCampaigns", () -> active);
    }

    @Override
    public void processElement(CountedEvent e, ReadOnlyContext ctx, Collector<PendingPush> out) throws Exception {
        if (activeByApp == null) { // first event after a (re)start: index the restored definitions
            index(ctx.getBroadcastState(CAMPAIGNS));
        }
        List<Campaign> campaigns = activeByApp.get(e.appId);
        if (campaigns == null) {
            return;
        }
        for (Campaign c : campaigns) {
            if (!c.eventName().equals(e.name)) {
                continue;
            }
            long start = Windows.start(e.occurredAt, c.windowMs());
            String key = c.campaignId() + '\u0000' + start;
            long[] p = progress.get(key);
            if (p == null) {
                p = new long[] {0, start + c.windowMs()};
                ctx.timerService().registerEventTimeTimer(cleanupAt(p[1]));
            }
            if (p[0] == SENT) {
                continue;
            }
            p[0]++;
            if (p[0] >= c.minCount()) {
                p[0] = SENT;
                pushJobs.inc();
                out.collect(PendingPush.of(c, e.userId, start, e.occurredAt));
            }
            progress.put(key, p);
        }
    }

    @Override
    public void processBroadcastElement(Campaign c, Context ctx, Collector<PendingPush> out) throws Exception {
        BroadcastState<String, Campaign> state = ctx.getBroadcastState(CAMPAIGNS);
        if (ValidateCampaigns.isTombstone(c)) {
            state.remove(c.campaignId());
        } else {
            state.put(c.campaignId(), c);
        }
        index(state);
    }

    private void index(ReadOnlyBroadcastState<String, Campaign> state) throws Exception {
        Map<String, List<Campaign>> byApp = new HashMap<>();
        int n = 0;
        for (Map.Entry<String, Campaign> e : state.immutableEntries()) {
            if (e.getValue().active()) {
                byApp.computeIfAbsent(e.getValue().appId(), k -> new ArrayList<>()).add(e.getValue());
                n++;
            }
        }
        activeByApp = byApp;
        active = n;
    }

    private long cleanupAt(long campaignWindowEnd) {
        return campaignWindowEnd + aggregationWindowMs + allowedLatenessMs - 1;
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<PendingPush> out) throws Exception {
        Iterator<Map.Entry<String, long[]>> it = progress.iterator();
        while (it.hasNext()) {
            if (cleanupAt(it.next().getValue()[1]) <= timestamp) {
                it.remove();
            }
        }
        if (progress.isEmpty()) {
            progress.clear();
        }
    }
}
