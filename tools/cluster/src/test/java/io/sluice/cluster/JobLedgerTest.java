package io.sluice.cluster;

import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Which state {@code resume} picks, on the files Flink leaves: checkpoint and savepoint directories with their metadata. */
class JobLedgerTest {
    @TempDir
    Path dir;

    @Test
    void theNewestJobsHighestCheckpointIdWinsAmongItsCheckpointsAndSavepointsAndNeverAnOlderJobsState() throws Exception {
        Path checkpoints = dir.resolve("checkpoints");
        Path savepoints = dir.resolve("savepoints");
        JobLedger ledger = JobLedger.of(dir.resolve("work"), checkpoints.toUri().toString(), savepoints.toUri().toString());
        JobID old = new JobID();
        JobID current = new JobID();
        ledger.submitted("aggregation", old, null);
        metadata(checkpoints.resolve(old.toHexString()).resolve("chk-90"), 90); // an older job's, with a higher id
        ledger.submitted("aggregation", current, "file:/somewhere/savepoint-x");
        metadata(checkpoints.resolve(current.toHexString()).resolve("chk-7"), 7);
        metadata(checkpoints.resolve(current.toHexString()).resolve("chk-8"), 8);
        Files.createDirectories(checkpoints.resolve(current.toHexString()).resolve("chk-9")); // in progress: no metadata
        assertThat(ledger.latest("aggregation").path()).endsWith(current.toHexString() + "/chk-8");

        // a stop whose answer was lost: its savepoint is only in the savepoint directory, under the job's id
        metadata(savepoints.resolve("savepoint-" + current.toHexString().substring(0, 6) + "-abc"), 9);
        assertThat(ledger.latest("aggregation").path()).contains("savepoint-" + current.toHexString().substring(0, 6));
        // cut short by a JobManager killed while writing it: skipped
        Path torn = checkpoints.resolve(current.toHexString()).resolve("chk-10");
        Files.createDirectories(torn);
        Files.write(torn.resolve("_metadata"), new byte[] {0, 0, 1});
        assertThat(ledger.latest("aggregation").what()).contains("checkpoint 9");

        // a refused submission never ran: the job before it is still the newest
        JobID refused = new JobID();
        ledger.submitted("aggregation", refused, null);
        ledger.failed(refused);
        assertThat(ledger.latest("aggregation").what()).contains("checkpoint 9");

        // another work directory sharing the state directory sees none of it
        JobLedger other = JobLedger.of(dir.resolve("other-work"), checkpoints.toUri().toString(), savepoints.toUri().toString());
        assertThatThrownBy(() -> other.latest("aggregation")).hasMessageContaining("no job 'aggregation' was submitted");
    }

    @Test
    void aJobThatCompletedNoCheckpointResumesFromWhatItStartedFromOrIsRefused() throws Exception {
        JobLedger ledger = JobLedger.of(dir.resolve("work"), dir.resolve("checkpoints").toString(), null);
        ledger.submitted("subscriptions", new JobID(), "/sp/savepoint-1");
        assertThat(ledger.latest("subscriptions").path()).isEqualTo("/sp/savepoint-1");
        ledger.submitted("subscriptions", new JobID(), null);
        assertThatThrownBy(() -> ledger.latest("subscriptions")).hasMessageContaining("completed no checkpoint")
                .hasMessageContaining("started without state");
        assertThatThrownBy(() -> JobLedger.of(dir, "s3://bucket/checkpoints", null)).hasMessageContaining("not a directory on this machine");
    }

    private static void metadata(Path checkpointDir, long id) throws Exception {
        Files.createDirectories(checkpointDir);
        try (OutputStream out = Files.newOutputStream(checkpointDir.resolve("_metadata")); DataOutputStream data = new DataOutputStream(out)) {
            Checkpoints.storeCheckpointMetadata(new CheckpointMetadata(id, List.of(), List.of()), data);
        }
    }
}
