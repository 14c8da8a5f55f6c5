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
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What {@code ./sluice cluster} submitted and stopped, kept beside the checkpoints ({@code sluice-jobs.tsv} in the
 * checkpoint directory), so that a job can resume from its newest state after the JobManager that knew it is gone: a
 * standalone cluster without HA forgets its jobs with its JobManager, while the retained checkpoints stay on disk under
 * Flink's job ids.
 */
final class JobLedger {
    static final String FILE = "sluice-jobs.tsv";
    private static final Pattern CHECKPOINT = Pattern.compile("chk-(\\d+)");

    private final Path checkpoints;

    private JobLedger(Path checkpoints) {
        this.checkpoints = checkpoints;
    }

    /** The ledger of a checkpoint directory ({@code execution.checkpointing.dir}) on this machine; empty for another file system. */
    static Optional<JobLedger> of(String checkpointDir) {
        if (checkpointDir == null || checkpointDir.isBlank()) {
            return Optional.empty();
        }
        URI uri = URI.create(checkpointDir);
        if (uri.getScheme() != null && !uri.getScheme().equals("file")) {
            return Optional.empty();
        }
        return Optional.of(new JobLedger(uri.getScheme() == null ? Path.of(checkpointDir) : Path.of(uri)));
    }

    void submitted(String name, JobID id, String from) throws IOException {
        append("submitted", name, id.toHexString(), from == null ? "-" : from);
    }

    void stopped(JobID id, String savepoint) throws IOException {
        append("stopped", "-", id.toHexString(), savepoint);
    }

    /** The state a job resumes from, and where it came from, for the progress line. */
    record Latest(String path, String what) {
    }

    /**
     * The newest state of the newest job submitted as {@code name}: the savepoint it was stopped with, else its newest
     * retained checkpoint whose metadata reads back whole, else the state it was itself started from. Never an older
     * job's checkpoint: after a newer job committed past it, resuming there would repeat effects.
     */
    Latest latest(String name) throws IOException {
        List<String[]> lines = read();
        String[] newest = null;
        for (String[] l : lines) {
            if (l[0].equals("submitted") && l[2].equals(name)) {
                newest = l;
            }
        }
        if (newest == null) {
            throw new ClusterCommand.UsageException("no job '" + name + "' was submitted with ./sluice cluster against the checkpoints in "
                    + checkpoints + " (" + checkpoints.resolve(FILE) + "); give the state yourself: submit " + name + " --from-savepoint PATH");
        }
        String id = newest[3];
        for (String[] l : lines) {
            if (l[0].equals("stopped") && l[3].equals(id)) {
                return new Latest(l[4], "the savepoint job " + id + " was stopped with");
            }
        }
        Path jobDir = checkpoints.resolve(id);
        List<Path> retained;
        try (Stream<Path> dirs = Files.isDirectory(jobDir) ? Files.list(jobDir) : Stream.empty()) {
            retained = dirs.filter(d -> CHECKPOINT.matcher(d.getFileName().toString()).matches() && Files.isRegularFile(d.resolve("_metadata")))
                    .sorted(Comparator.comparingLong(JobLedger::number).reversed()).toList();
        }
        for (Path chk : retained) {
            if (readsBack(chk)) {
                return new Latest(chk.toString(), "job " + id + "'s newest retained checkpoint, " + chk.getFileName() + " of "
                        + Files.getLastModifiedTime(chk.resolve("_metadata")).toInstant());
            }
            System.out.println("sluice cluster: " + chk + " is incomplete (its metadata does not read back); trying an older one");
        }
        if (!newest[4].equals("-")) {
            return new Latest(newest[4], "the state job " + id + " was started from (it completed no checkpoint)");
        }
        throw new ClusterCommand.UsageException("job " + id + " (" + name + ") completed no checkpoint in " + jobDir
                + " and was started without state: there is nothing to resume, submit it again with ./sluice cluster submit " + name);
    }

    private static long number(Path chk) {
        Matcher m = CHECKPOINT.matcher(chk.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /** A checkpoint's {@code _metadata} loads completely (a JobManager killed while writing it leaves it cut short). */
    private static boolean readsBack(Path chk) {
        try (InputStream in = Files.newInputStream(chk.resolve("_metadata")); DataInputStream data = new DataInputStream(in)) {
            Checkpoints.loadCheckpointMetadata(data, JobLedger.class.getClassLoader(), chk.toString());
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private void append(String... fields) throws IOException {
        Files.createDirectories(checkpoints);
        List<String> line = new ArrayList<>(List.of(fields));
        line.add(1, Instant.now().toString());
        Files.writeString(checkpoints.resolve(FILE), String.join("\t", line) + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** Lines as {@code kind, time, name, job id, path}. */
    private List<String[]> read() throws IOException {
        Path f = checkpoints.resolve(FILE);
        if (!Files.isRegularFile(f)) {
            return List.of();
        }
        return Files.readAllLines(f, StandardCharsets.UTF_8).stream().map(l -> l.split("\t")).filter(l -> l.length == 5).toList();
    }
}
