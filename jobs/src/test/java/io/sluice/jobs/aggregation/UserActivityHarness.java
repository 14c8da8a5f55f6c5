package io.sluice.jobs.aggregation;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.UserEvent;
import io.sluice.jobs.campaigns.PendingPush;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;

import java.util.List;
import java.util.Objects;

/**
 * {@link UserActivityOperator} in Flink's keyed two-input test harness, with the campaigns input marked idle as in the
 * job ({@code BroadcastWatermarks}): the events' watermarks alone move event time.
 */
final class UserActivityHarness {
    final KeyedTwoInputStreamOperatorTestHarness<String, EventBundle, Campaign, WindowCount> h;

    UserActivityHarness(long windowMs, long lateness) throws Exception {
        this(open(create(windowMs, lateness)));
    }

    /** Around a harness already opened (e.g. after restoring a snapshot); marks the campaigns input idle. */
    UserActivityHarness(KeyedTwoInputStreamOperatorTestHarness<String, EventBundle, Campaign, WindowCount> opened) throws Exception {
        h = opened;
        h.processWatermarkStatus2(WatermarkStatus.IDLE);
    }

    private static <H extends KeyedTwoInputStreamOperatorTestHarness<String, EventBundle, Campaign, WindowCount>> H open(H h) throws Exception {
        h.open();
        return h;
    }

    /** A harness around a new operator, not yet opened (to restore a snapshot into). */
    static KeyedTwoInputStreamOperatorTestHarness<String, EventBundle, Campaign, WindowCount> create(long windowMs, long lateness) throws Exception {
        return new KeyedTwoInputStreamOperatorTestHarness<>(new UserActivityOperator("user-events", windowMs, lateness, 1_000, 10_000),
                EventBundle::userKey, (Campaign c) -> "", Types.STRING);
    }

    /** One event of app {@code app}, as the one-event bundle {@link LocalEventBundles} would send. */
    static StreamRecord<EventBundle> bundle(String user, String name, long at, Double value) {
        return bundle("app", user, name, at, value);
    }

    static StreamRecord<EventBundle> bundle(String app, String user, String name, long at, Double value) {
        CountedEvent e = CountedEvent.of(new UserEvent(app, user, name, at, value, null), 0, 0);
        EventBundle b = EventBundle.of(e);
        b.add(e);
        return new StreamRecord<>(b.trimmed(), at);
    }

    void event(String user, String name, long at, Double value) throws Exception {
        h.processElement1(bundle(user, name, at, value));
    }

    void event(String app, String user, String name, long at, Double value) throws Exception {
        h.processElement1(bundle(app, user, name, at, value));
    }

    void campaign(Campaign c) throws Exception {
        h.processElement2(new StreamRecord<>(c));
    }

    /** Rows emitted since the last call, as text. */
    List<String> rows() {
        List<String> out = h.extractOutputValues().stream().map(WindowCount::toString).toList();
        h.getOutput().clear();
        return out;
    }

    /** Pushes emitted since the last call, as {@code campaign/user@created_at}. */
    List<String> pushes() {
        var side = h.getSideOutput(UserActivityOperator.PUSHES);
        if (side == null) {
            return List.of();
        }
        List<String> out = side.stream().map(r -> Objects.requireNonNull(((StreamRecord<PendingPush>) r).getValue()))
                .map(p -> p.campaignId + "/" + p.userId + "@" + p.createdAt).toList();
        side.clear();
        return out;
    }
}
