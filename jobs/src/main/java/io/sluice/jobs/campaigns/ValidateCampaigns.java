package io.sluice.jobs.campaigns;

import io.sluice.core.model.Campaign;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

import java.nio.charset.StandardCharsets;

/**
 * In: decoded {@code campaigns} records (a compacted topic). Out: campaign definitions for the
 * broadcast state; a tombstone (null value) becomes an inactive campaign of that id. To
 * {@link io.sluice.jobs.aggregation.ValidateEvents#DeadLetter.SIDE_OUTPUT}: undecodable records and
 * definitions that cannot work (stage {@code validate}, naming the field and value).
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
        if (problem != null) {
            ctx.output(DeadLetter.SIDE_OUTPUT,
                    new DeadLetter(topic, in.partition, in.offset, in.key, in.raw, "validate", problem));
            return;
        }
        out.collect(in.value);
    }

    /** The definition standing for a deleted campaign: inactive, no app. */
    public static Campaign tombstone(String campaignId) {
        return new Campaign(campaignId, "", "", Integer.MAX_VALUE, 1, "", 1, false);
    }

    public static boolean isTombstone(Campaign c) {
        return !c.active() && c.appId().isEmpty();
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
        if (c.windowMs() < 1) {
            return "campaign " + c.campaignId() + ": window is " + c.windowMs() + " ms, expected 1 or more";
        }
        if (c.maxPerSecond() < 1) {
            return "campaign " + c.campaignId() + ": max_per_second is " + c.maxPerSecond() + ", expected 1 or more";
        }
        return null;
    }
}
