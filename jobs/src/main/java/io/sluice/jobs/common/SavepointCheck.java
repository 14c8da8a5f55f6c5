package io.sluice.jobs.common;

import io.sluice.core.config.ConfigException;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess;
import org.apache.flink.runtime.state.filesystem.FsCompletedCheckpointStorageLocation;

import java.io.DataInputStream;
import java.io.IOException;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Checks, where the job graph is built (the client of {@code flink run -s}, {@code ./sluice cluster submit
 * --from-savepoint}), what Flink would only find on the JobManager, in a message that names neither Sluice's key nor
 * the fix: that the savepoint or retained checkpoint to restore was taken with the max parallelism this build runs with.
 */
public final class SavepointCheck {
    private SavepointCheck() {
    }

    /**
     * Throws a {@link ConfigException} naming {@code deployment.max-parallelism} when the state at {@code path} has
     * another max parallelism than {@code configured}. A path this JVM cannot read (a file system whose plugin only
     * the cluster has) is left to Flink's own check.
     */
    public static void requireMaxParallelism(String path, int configured) {
        Optional<TreeSet<Integer>> taken = maxParallelisms(path);
        if (taken.isEmpty() || taken.get().isEmpty() || taken.get().equals(new TreeSet<>(java.util.Set.of(configured)))) {
            return;
        }
        if (taken.get().size() > 1) { // not one of Sluice's builds; with --allow-non-restored-state Flink may skip some of them
            System.err.println("sluice: " + path + " holds operators of max parallelisms " + taken.get() + "; Flink checks them against "
                    + "deployment.max-parallelism " + configured + " when the job starts");
            return;
        }
        int was = taken.get().first();
        throw new ConfigException("the state to restore (" + path + ") was taken with max parallelism " + was + ", and this job runs with "
                + "deployment.max-parallelism " + configured + ". Keyed state is split into that many key groups for its whole life, so Flink "
                + "restores it only at the same value: resume with --deployment.max-parallelism " + was + " and keep that setting for this "
                + "deployment. Savepoints of Sluice builds before the key have Flink's default, 128 for jobs first started with at most 85 "
                + "subtasks (docs/cluster.md#max-parallelism)");
    }

    /** The max parallelisms recorded for the operators at {@code path}, or empty if this JVM cannot read it. */
    static Optional<TreeSet<Integer>> maxParallelisms(String path) {
        try {
            FsCompletedCheckpointStorageLocation location = AbstractFsCheckpointStorageAccess.resolveCheckpointPointer(path);
            CheckpointMetadata metadata;
            try (DataInputStream in = new DataInputStream(location.getMetadataHandle().openInputStream())) {
                metadata = Checkpoints.loadCheckpointMetadata(in, SavepointCheck.class.getClassLoader(), path);
            }
            TreeSet<Integer> values = new TreeSet<>();
            for (OperatorState s : metadata.getOperatorStates()) {
                values.add(s.getMaxParallelism());
            }
            return Optional.of(values);
        } catch (IOException | RuntimeException unreadable) {
            System.err.println("sluice: could not read " + path + " to check its max parallelism (" + unreadable
                    + "); Flink checks it when the job starts");
            return Optional.empty();
        }
    }
}
