package io.sluice.cluster;

import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.checkpoint.Checkpoints;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * What {@code ./sluice cluster} submitted and stopped, kept beside the checkpoints ({@code sluice-jobs.tsv} in the
 * checkpoint directory), so that a job can resume from its newest state after the JobManager that knew it is gone: a
 * standalone cluster without HA forgets its jobs with its JobManager, while the retained checkpoints and savepoints stay
 * on disk under Flink's job ids. Each line names the cluster's work directory, so clusters sharing a state directory
 * (two checkouts, two work directories) never resume each other's jobs.
 */
final class JobLedger {
    static final String FILE = "sluice-jobs.tsv";
    private static final Pattern CHECKPOINT = Pattern.compile("chk-(\\d+)");

    private final Path checkpoints;
    private final Path savepoints;
    private final String cluster;

    private JobLedger(Path checkpoints, Path savepoints, Path workDir) {
        this.checkpoints = checkpoints;
        this.savepoints = savepoints;
        this.cluster = workDir.toAbsolutePath().normalize().toString();
    }

    /**
     * The ledger of the cluster started from {@code workDir}, with its checkpoint and savepoint directories
     * ({@code execution.checkpointing.dir}, {@code .savepoint-dir}); explains in the exception why there is none.
     */
    static JobLedger of(Path workDir, String checkpointDir, String savepointDir) {
        Path c = local(checkpointDir, "execution.checkpointing.dir");
        Path s = savepointDir == null || savepointDir.isBlank() ? null : local(savepointDir, "execution.checkpointing.savepoint-dir");
        return new JobLedger(c, s, workDir);
    }

    private static Path local(String dir, String key) {
        if (dir == null || dir.isBlank()) {
            throw new IllegalArgumentException(key + " is not set, so the cluster retains no checkpoint to resume from");
        }
        URI uri;
        try {
            uri = URI.create(dir.replace(" ", "%20"));
        } catch (IllegalArgumentException e) {
            return Path.of(dir);
        }
        if (uri.getScheme() == null) {
            return Path.of(dir);
        }
        if (!uri.getScheme().equals("file") || (uri.getAuthority() != null && !uri.getAuthority().isEmpty())) {
            throw new IllegalArgumentException(key + " is " + dir + ", not a directory on this machine");
        }
        return Path.of(uri.getPath());
    }

    /** Recorded before the submission, with the job id the client chose: a submission that times out is still known. */
    void submitted(String name, JobID id, String from) throws IOException {
        append("submitted", name, id.toHexString(), from == null ? "-" : from);
    }

    /** The submission of {@code id} was refused: it never ran, and the job's newest state is an earlier job's. */
    void failed(JobID id) throws IOException {
        append("failed", "-", id.toHexString(), "-");
    }

    void stopped(JobID id, String savepoint) throws IOException {
        append("stopped", "-", id.toHexString(), savepoint);
    }

    /** The state a job resumes from, and where it came from, for the progress line. */
    record Latest(String path, String what) {
    }

    private record Candidate(Path path, long checkpointId, String what) {
    }

    /**
     * The newest state of the newest job submitted as {@code name} from this cluster: of its retained checkpoints,
     * the savepoints it was stopped with (recorded, or in the savepoint directory under its id, in case the stop was
     * not recorded) and its own, the one with the highest checkpoint id whose metadata reads back whole; else the state
     * it was itself started from. Never an older job's state: a newer job may have committed past it, and resuming
     * there would repeat effects.
     */
    Latest latest(String name) throws IOException {
        List<String[]> lines = read();
        Set<String> refused = new HashSet<>();
        lines.stream().filter(l -> l[0].equals("failed")).forEach(l -> refused.add(l[4]));
        String[] newest = null;
        for (String[] l : lines) {
            if (l[0].equals("submitted") && l[3].equals(name) && !refused.contains(l[4])) {
                newest = l;
            }
        }
        if (newest == null) {
            throw new ClusterCommand.UsageException("no job '" + name + "' was submitted with ./sluice cluster from " + cluster + " whose record is in "
                    + checkpoints.resolve(FILE) + ". A job that ran with another --state-dir or -D execution.checkpointing.dir resumes once the "
                    + "cluster is started with the same; or give the state yourself: submit " + name + " --from-savepoint PATH");
        }
        String id = newest[4];
        List<Candidate> candidates = new ArrayList<>();
        Path jobDir = checkpoints.resolve(id);
        try (Stream<Path> dirs = Files.isDirectory(jobDir) ? Files.list(jobDir) : Stream.empty()) {
            dirs.filter(d -> CHECKPOINT.matcher(d.getFileName().toString()).matches()).forEach(d -> candidates.add(
                    new Candidate(d, -1, "job " + id + "'s newest retained checkpoint, " + d.getFileName())));
        }
        for (String[] l : lines) {
            if (l[0].equals("stopped") && l[4].equals(id)) {
                try {
                    candidates.add(new Candidate(local(l[5], "the savepoint"), -1, "the savepoint job " + id + " was stopped with"));
                } catch (IllegalArgumentException elsewhere) {
                    throw new ClusterCommand.UsageException("job " + id + " (" + name + ") was stopped with savepoint " + l[5]
                            + ", which is not on this machine: submit " + name + " --from-savepoint " + l[5]);
                }
            }
        }
        savepointsIn(savepoints, id).forEach(d -> candidates.add(new Candidate(d, -1, "a savepoint of job " + id + " in " + savepoints)));
        Candidate best = null;
        for (Candidate c : candidates) {
            long checkpointId = checkpointId(c.path());
            if (checkpointId >= 0 && (best == null || checkpointId > best.checkpointId())) {
                best = new Candidate(c.path(), checkpointId, c.what());
            }
        }
        if (best != null) {
            return new Latest(best.path().toString(), best.what() + " (checkpoint " + best.checkpointId() + " of "
                    + Files.getLastModifiedTime(best.path().resolve("_metadata")).toInstant() + ")");
        }
        if (!newest[5].equals("-")) {
            return new Latest(newest[5], "the state job " + id + " was started from (it completed no checkpoint)");
        }
        throw new ClusterCommand.UsageException("job " + id + " (" + name + ") completed no checkpoint in " + jobDir
                + " and was started without state: there is nothing to resume, submit it again with ./sluice cluster submit " + name);
    }

    /**
     * The savepoint job {@code id} wrote into {@code dir} (null: the cluster's savepoint directory) at or after
     * {@code since}, the one with the highest checkpoint id whose metadata reads back whole; for a stop whose answer was
     * lost though the job finished with it.
     */
    Optional<Path> savepointOf(String id, String dir, Instant since) throws IOException {
        Path best = null;
        long bestId = -1;
        for (Path d : savepointsIn(dir == null ? savepoints : local(dir, "--savepoint-dir"), id)) {
            long checkpointId = checkpointId(d);
            if (checkpointId > bestId && !Files.getLastModifiedTime(d.resolve("_metadata")).toInstant().isBefore(since)) {
                best = d;
                bestId = checkpointId;
            }
        }
        return Optional.ofNullable(best);
    }

    /** The savepoint directories Flink named after job {@code id} in {@code dir} (none if there is no such directory). */
    private static List<Path> savepointsIn(Path dir, String id) throws IOException {
        if (dir == null || !Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> dirs = Files.list(dir)) {
            return dirs.filter(d -> d.getFileName().toString().startsWith("savepoint-" + id.substring(0, 6) + "-")).toList();
        }
    }

    /** The checkpoint id in a checkpoint's or savepoint's {@code _metadata}, or -1 if it does not load completely (a JobManager killed while writing it). */
    private static long checkpointId(Path dir) {
        Path metadata = dir.resolve("_metadata");
        if (!Files.isRegularFile(metadata)) {
            return -1;
        }
        try (InputStream in = Files.newInputStream(metadata); DataInputStream data = new DataInputStream(in)) {
            return Checkpoints.loadCheckpointMetadata(data, JobLedger.class.getClassLoader(), dir.toString()).getCheckpointId();
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    private void append(String kind, String name, String id, String path) throws IOException {
        Files.createDirectories(checkpoints);
        Files.writeString(checkpoints.resolve(FILE), String.join("\t", kind, Instant.now().toString(), cluster, name, id, path) + "\n",
                StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** This cluster's lines as {@code kind, time, work dir, name, job id, path}. */
    private List<String[]> read() throws IOException {
        Path f = checkpoints.resolve(FILE);
        if (!Files.isRegularFile(f)) {
            return List.of();
        }
        return Files.readAllLines(f, StandardCharsets.UTF_8).stream().map(l -> l.split("\t")).filter(l -> l.length == 6 && l[2].equals(cluster)).toList();
    }
}
