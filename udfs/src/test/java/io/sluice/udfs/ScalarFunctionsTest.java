package io.sluice.udfs;

import io.sluice.routing.PushJobIds;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.time.LocalDateTime;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class ScalarFunctionsTest {
    @Test
    void propReadsAMapAndTheJsonOfAFlatObject() {
        Prop p = new Prop();
        assertThat(p.eval(Map.of("plan", "pro"), "plan")).isEqualTo("pro");
        assertThat(p.eval(Map.of("plan", "pro"), "missing")).isNull();
        assertThat(p.eval("{\"plan\": \"pro\", \"level\":\"20\", \"q\":\"a\\\"b\\u00e9\"}", "level")).isEqualTo("20");
        assertThat(p.eval("{\"plan\": \"pro\", \"q\":\"a\\\"b\\u00e9\"}", "q")).isEqualTo("a\"bé");
        assertThat(p.eval("{\"n\": 12, \"x\": null}", "n")).isEqualTo("12");
        assertThat(p.eval("{\"n\": 12, \"x\": null}", "x")).isNull();
        assertThat(p.eval("{}", "plan")).isNull();
        assertThat(p.eval("not json", "plan")).isNull();
        assertThat(p.eval("{\"o\": {\"a\": \"1\"}}", "o")).as("not flat").isNull();
        assertThat(p.eval((String) null, "plan")).isNull();
    }

    @Test
    void timeLagMsIsNowMinusTheTimestamp() {
        long tenSecondsAgo = System.currentTimeMillis() - 10_000;
        TimeLagMs f = new TimeLagMs();
        assertThat(f.eval(tenSecondsAgo).doubleValue()).isCloseTo(10_000, within(1_000.0));
        assertThat(f.eval(Instant.ofEpochMilli(tenSecondsAgo)).doubleValue()).isCloseTo(10_000, within(1_000.0));
        assertThat(f.eval(LocalDateTime.ofInstant(Instant.ofEpochMilli(tenSecondsAgo), java.time.ZoneOffset.UTC)).doubleValue())
                .as("TIMESTAMP read as UTC").isCloseTo(10_000, within(1_000.0));
        assertThat(f.eval((Long) null)).isNull();
        assertThat(f.isDeterministic()).isFalse();
    }

    @Test
    void pushJobIdIsTheJobsId() {
        long start = 1_699_999_800_000L;
        PushJobId f = new PushJobId();
        String expected = PushJobIds.of("app-1", "campaign-1", "user-7", start);
        assertThat(f.eval("app-1", "campaign-1", "user-7", start)).isEqualTo(expected);
        assertThat(f.eval("app-1", "campaign-1", "user-7", Instant.ofEpochMilli(start))).isEqualTo(expected);
        assertThat(f.eval("app-1", "campaign-1", "user-7", LocalDateTime.ofInstant(Instant.ofEpochMilli(start), java.time.ZoneOffset.UTC))).isEqualTo(expected);
        assertThat(f.eval("app-1", "campaign-1", "user-8", start)).isNotEqualTo(expected);
        assertThat(f.eval("app-2", "campaign-1", "user-7", start)).as("the same campaign id in another app").isNotEqualTo(expected);
        assertThat(f.eval("app\n1", "campaign-1", "user-7", start)).as("ids holding the old separator")
                .isNotEqualTo(f.eval("app", "1\ncampaign-1", "user-7", start));
        assertThat(f.eval(null, "campaign-1", "user-7", start)).isNull();
    }
}
