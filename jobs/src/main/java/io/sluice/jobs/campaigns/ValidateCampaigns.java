package io.sluice.jobs.campaigns;

import io.sluice.core.model.Campaign;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.FieldLimits;
import io.sluice.jobs.common.Decoded;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

import java.nio.charset.StandardCharsets;

/**
 * In: decoded {@code campaigns} records (a compacted topic, key {@code app_id:campaign_id},
 * {@link Campaign#keyOf}). Out: campaign definitions for the broadcast state; a tombstone (null value)
 * becomes a deletion of the campaign its key names. To {@link DeadLetter#SIDE_OUTPUT}: undecodable
 * records, definitions that cannot work, and definitions whose key names another app or campaign
 * (stage {@code validate}, naming the field and value). A key that is the campaign id alone (producers
 * before keys named the app) is accepted when it holds no {@code :} (one that does could be another app's
 * {@code app_id:campaign_id}); its tombstone deletes that campaign id in every app.
 */
public class ValidateCampaigns extends ProcessFunction<Decoded<Campaign>, Campaign> {
    private final String topic;

    public ValidateCampaigns(String topic) {
        this.topic = topic;
    }

    @Override
    public void processElement(Decoded<Campaign> in, Context ctx, Collector<Campaign> out) {
        if (in.deadLetter != null) {
            if (in.deadLetter.value() == null && in.deadLetter.key() != null) { // a tombstone: the campaign is deleted
                out.collect(tombstone(new String(in.deadLetter.key(), StandardCharsets.UTF_8)));
                return;
            }
            ctx.output(DeadLetter.SIDE_OUTPUT, in.deadLetter);
            return;
        }
        String problem = problem(in.value);
        if (problem == null && in.key != null) {
            problem = keyProblem(new String(in.key, StandardCharsets.UTF_8), in.value);
        }
        if (problem != null) {
            ctx.output(DeadLetter.SIDE_OUTPUT,
                    new DeadLetter(topic, in.partition, in.offset, in.key, in.raw, "validate", problem));
            return;
        }
        out.collect(in.value);
    }

    /** The deletion a tombstone's key stands for: inactive and without an event name; no app for a key without {@code :}. */
    public static Campaign tombstone(String key) {
        int colon = key.indexOf(':');
        String app = colon < 0 ? "" : key.substring(0, colon);
        String id = colon < 0 ? key : key.substring(colon + 1);
        return new Campaign(id, app, "", Integer.MAX_VALUE, 1, "", 1, false);
    }

    public static boolean isTombstone(Campaign c) {
        return !c.active() && c.eventName().isEmpty();
    }

    static String keyProblem(String key, Campaign c) {
        if (key.equals(c.key()) || key.indexOf(':') < 0 && key.equals(c.campaignId())) { // the id alone: producers before keys named the app
            return null;
        }
        return "campaign " + c.campaignId() + " of app " + c.appId() + ": record key '" + key + "' does not name it; expected '" + c.key()
                + "' (app_id:campaign_id)";
    }

    static String problem(Campaign c) {
        if (c.campaignId() == null || c.campaignId().isBlank()) {
            return "missing campaign_id";
        }
        if (c.appId() == null || c.appId().isBlank()) {
            return "campaign " + c.campaignId() + ": missing app_id";
        }
        if (c.eventName() == null || c.eventName().isBlank()) {
            return "campaign " + c.campaignId() + ": missing event_name";
        }
        if (c.minCount() < 1) {
            return "campaign " + c.campaignId() + ": min_count is " + c.minCount() + ", expected 1 or more";
        }
        if (c.windowMs() < 1 || c.windowMs() > Campaign.MAX_WINDOW_MS) {
            return "campaign " + c.campaignId() + ": window is " + c.windowMs() + " ms, expected 1 to " + Campaign.MAX_WINDOW_MS + " (31 days)";
        }
        if (c.maxPerSecond() < 1) {
            return "campaign " + c.campaignId() + ": max_per_second is " + c.maxPerSecond() + ", expected 1 or more";
        }
        String tooLong = FieldLimits.tooLong("campaign_id", c.campaignId(), FieldLimits.MAX_ID_CHARS);
        tooLong = tooLong != null ? tooLong : FieldLimits.tooLong("app_id", c.appId(), FieldLimits.MAX_ID_CHARS);
        tooLong = tooLong != null ? tooLong : FieldLimits.tooLong("event_name", c.eventName(), FieldLimits.MAX_ID_CHARS);
        tooLong = tooLong != null ? tooLong : FieldLimits.tooLong("message", c.message(), FieldLimits.MAX_MESSAGE_CHARS);
        return tooLong == null ? null : "campaign " + (c.campaignId().length() > 100 ? c.campaignId().substring(0, 100) + "…" : c.campaignId()) + ": " + tooLong;
    }
}
