package io.sluice.udfs;

import io.sluice.routing.PushJobIds;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * {@code PUSH_JOB_ID(app_id, campaign_id, user_id, window_start)}: the {@code job_id} the aggregation job gives
 * the push for that user of that app entering that campaign's segment in the campaign window starting at
 * {@code window_start} — {@link PushJobIds#of}, the very same code. {@code window_start}: a
 * {@code TIMESTAMP(3)} read as UTC, a {@code TIMESTAMP_LTZ(3)}, or epoch milliseconds. Null in, null out.
 */
public class PushJobId extends ScalarFunction {
    public String eval(String appId, String campaignId, String userId, @DataTypeHint("TIMESTAMP(3)") LocalDateTime windowStart) {
        return windowStart == null ? null : eval(appId, campaignId, userId, windowStart.toInstant(ZoneOffset.UTC).toEpochMilli());
    }

    public String eval(String appId, String campaignId, String userId, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant windowStart) {
        return windowStart == null ? null : eval(appId, campaignId, userId, windowStart.toEpochMilli());
    }

    public String eval(String appId, String campaignId, String userId, Long windowStartMs) {
        if (appId == null || campaignId == null || userId == null || windowStartMs == null) {
            return null;
        }
        return PushJobIds.of(appId, campaignId, userId, windowStartMs);
    }
}
