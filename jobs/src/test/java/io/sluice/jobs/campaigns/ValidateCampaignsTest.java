package io.sluice.jobs.campaigns;

import io.sluice.core.model.Campaign;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The campaigns topic's key (app_id:campaign_id) against the value, tombstones, and the bounds of a definition. */
class ValidateCampaignsTest {
    private static Campaign welcome(String app, long windowMs) {
        return new Campaign("welcome", app, "signup", 1, windowMs, "hi", 50, true);
    }

    @Test
    void theKeyMustNameTheAppAndCampaignOfTheValue() {
        Campaign c = welcome("acme", 60_000);
        assertThat(ValidateCampaigns.keyProblem("acme:welcome", c)).isNull();
        assertThat(ValidateCampaigns.keyProblem("welcome", c)).as("a key of the campaign id alone, from producers before keys named the app").isNull();
        Campaign colon = new Campaign("acme:welcome", "beta", "signup", 1, 60_000, "hi", 50, true);
        assertThat(ValidateCampaigns.keyProblem("acme:welcome", colon)).as("the id alone, but it reads as acme's welcome").isNotNull();
        assertThat(ValidateCampaigns.keyProblem("beta:acme:welcome", colon)).isNull();
        assertThat(ValidateCampaigns.keyProblem("other:welcome", c)).isEqualTo(
                "campaign welcome of app acme: record key 'other:welcome' does not name it; expected 'acme:welcome' (app_id:campaign_id)");
    }

    @Test
    void aTombstoneNamesItsAppAndCampaignByTheFirstColon() {
        Campaign t = ValidateCampaigns.tombstone("acme:promo:2026");
        assertThat(t.appId()).isEqualTo("acme");
        assertThat(t.campaignId()).isEqualTo("promo:2026");
        assertThat(ValidateCampaigns.isTombstone(t)).isTrue();
        assertThat(ValidateCampaigns.tombstone("welcome").appId()).as("a legacy key: every app").isEmpty();
        assertThat(ValidateCampaigns.isTombstone(new Campaign("c", "acme", "signup", 1, 1, "m", 1, false))).as("a paused campaign").isFalse();
    }

    @Test
    void aCampaignWindowIsAtMostThirtyOneDays() {
        assertThat(ValidateCampaigns.problem(welcome("acme", Campaign.MAX_WINDOW_MS))).isNull();
        assertThat(ValidateCampaigns.problem(welcome("acme", Long.MAX_VALUE - 1))).isEqualTo(
                "campaign welcome: window is 9223372036854775806 ms, expected 1 to 2678400000 (31 days)");
    }

    @Test
    void aMessageOrIdTooLongForAPushRecordIsRefused() {
        assertThat(ValidateCampaigns.problem(new Campaign("welcome", "acme", "signup", 1, 60_000, "m".repeat(65_536), 50, true))).isNull();
        assertThat(ValidateCampaigns.problem(new Campaign("welcome", "acme", "signup", 1, 60_000, "m".repeat(900_000), 50, true)))
                .isEqualTo("campaign welcome: message is 900000 characters long, more than the 65536 the job takes");
        assertThat(ValidateCampaigns.problem(new Campaign("c".repeat(5_000), "acme", "signup", 1, 60_000, "m", 50, true)))
                .isEqualTo("campaign " + "c".repeat(100) + "…: campaign_id is 5000 characters long, more than the 1000 the job takes");
    }
}
