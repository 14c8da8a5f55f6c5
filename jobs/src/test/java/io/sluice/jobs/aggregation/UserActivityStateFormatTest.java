package io.sluice.jobs.aggregation;

import io.sluice.core.model.Campaign;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.util.OperatorSnapshotUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Savepoint compatibility of {@link UserActivityOperator}'s state: a snapshot written by an earlier build is
 * checked into {@code src/test/resources/state/} and restored by this build, so a change to a state format
 * ({@link UserWindow}'s serializer, the segment entries, the broadcast campaigns) must keep reading the old one.
 * A new format version adds a new file (written with {@code -Dsluice.write-state-snapshots=true}, see
 * {@link #writeSnapshotOfThisBuild}) and keeps the old files and their tests.
 */
class UserActivityStateFormatTest {
    static final long MINUTE = 60_000;
    /** Written by the build whose UserWindow snapshot was Flink's unversioned {@code SimpleTypeSerializerSnapshot}. */
    static final String FORMAT_1 = "state/user-activity-format-1.snapshot";

    /** The state both files hold: two users' windows (one with two event names) and one campaign with a segment entry. */
    private static OperatorSubtaskState scenario() throws Exception {
        var t = new UserActivityHarness(MINUTE, 30_000);
        t.h.setProcessingTime(0);
        t.campaign(new Campaign("c1", "app", "purchase", 3, 10 * MINUTE, "hi", 10, true));
        t.event("u1", "open", 1_000, 2.0);
        t.event("u1", "open", 2_000, null);
        t.event("u1", "purchase", 3_000, 1.5);
        t.event("u2", "open", 4_000, 1.0);
        t.h.processWatermark1(new Watermark(5_000));
        t.h.prepareSnapshotPreBarrier(1); // as before every checkpoint: the buffer goes into keyed state
        OperatorSubtaskState state = t.h.snapshot(1, 1);
        t.h.close();
        return state;
    }

    @Test
    @EnabledIfSystemProperty(named = "sluice.write-state-snapshots", matches = "true")
    void writeSnapshotOfThisBuild() throws Exception {
        String name = System.getProperty("sluice.state-snapshot-file");
        assertThat(name).as("-Dsluice.state-snapshot-file=state/user-activity-format-N.snapshot (a new file)").isNotNull();
        Path file = Path.of("src/test/resources").resolve(name);
        assertThat(file).as("a checked-in snapshot is never overwritten: it is what older builds wrote").doesNotExist();
        Files.createDirectories(file.getParent());
        OperatorSnapshotUtil.writeStateHandle(scenario(), file.toString());
    }

    @Test
    void aSnapshotOfFormat1RestoresAndCountsGoOn() throws Exception {
        String file = Path.of(getClass().getClassLoader().getResource(FORMAT_1).toURI()).toString();
        var h = UserActivityHarness.create(MINUTE, 30_000);
        h.setup();
        h.initializeState(OperatorSnapshotUtil.readStateHandle(file));
        h.open();
        h.setProcessingTime(0);
        var t = new UserActivityHarness(h);
        t.event("u1", "open", 10_000, 1.0);
        t.event("u1", "purchase", 11_000, 1.0);
        t.event("u2", "view", 12_000, 1.0);
        t.event("u2", "open", 12_500, 1.0);
        h.setProcessingTime(1_000);
        assertThat(t.rows()).as("counts continue from the restored windows").containsExactlyInAnyOrder(
                "app/u1/open@0: count 3, sum 3.0", "app/u1/purchase@0: count 2, sum 2.5", "app/u2/view@0: count 1, sum 1.0",
                "app/u2/open@0: count 2, sum 2.0");
        t.event("u1", "purchase", 13_000, 1.0);
        assertThat(t.pushes()).as("the restored segment entry (2 purchases) reaches c1's min_count 3").containsExactly("c1/u1@13000");
        h.processWatermark1(new Watermark(MINUTE - 1));
        assertThat(t.rows()).as("the final result of the window changed since the last emission").containsExactly(
                "app/u1/purchase@0: count 3, sum 3.5");
        h.close();
    }
}
