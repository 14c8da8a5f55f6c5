package io.sluice.cluster;

import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.runtime.client.JobStatusMessage;

import java.io.File;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * {@code ./sluice cluster}: a standalone Flink session cluster on this machine and Sluice's jobs on
 * it, as in production: {@code start}, {@code status}, {@code stop} for the processes; {@code submit},
 * {@code list}, {@code cancel}, {@code stop-job} (with a savepoint) for the jobs. Run from the
 * repository root (the {@code ./sluice} script does).
 */
public final class ClusterCommand {
    static final String DEFAULT_WORK_DIR = "target/sluice-cluster";
    static final String DEFAULT_JAR = "jobs/target/sluice-jobs.jar";
    static final String DEFAULT_STATE_DIR = "~/.local/state/sluice";
    static final Path CONNECTION_FILE = Path.of("target/sluice-local/connection.yaml");

    private final PrintStream out;
    private final String classpath;

    /** @param classpath the cluster's classpath, given to the processes it starts */
    public ClusterCommand(PrintStream out, String classpath) {
        this.out = out;
        this.classpath = classpath;
    }

    public static void main(String[] args) {
        int code;
        try {
            String cp = System.getProperty("sluice.cluster.classpath");
            if (cp == null) {
                cp = System.getProperty("java.class.path");
            }
            code = new ClusterCommand(System.out, cp).run(args);
        } catch (UsageException e) {
            System.err.println("sluice cluster: " + e.getMessage());
            code = 2;
        } catch (Exception e) {
            System.err.println("sluice cluster: " + rootMessage(e));
            code = 1;
        }
        System.exit(code);
    }

    static String usage() {
        return String.join("\n",
                "usage: ./sluice cluster COMMAND [options]",
                "  start [--web-port N] [--task-managers N] [--state-dir DIR] [-D key=value ...]",
                "        start a JobManager and N TaskManager processes (default 1) with flink-conf/ (web UI on 8081); -D overrides a setting;",
                "        checkpoints and savepoints go under DIR (default $SLUICE_STATE_DIR, else $XDG_STATE_HOME/sluice, else " + DEFAULT_STATE_DIR + ")",
                "  status                       the processes, the web UI and the jobs",
                "  stop                         stop the processes (their jobs end with them: stop-job first to keep state)",
                "  submit JOB [--from-savepoint PATH] [--allow-non-restored-state] [--jar FILE] [Sluice options]",
                "        submit a Sluice job (subscriptions, aggregation, all, or sidekiq-bridge) from the shaded jar (" + DEFAULT_JAR + ");",
                "        Sluice options as for ./sluice local: --config FILE, --key value (default config: " + CONNECTION_FILE
                        + " if ./sluice local wrote it)",
                "  list                         the cluster's jobs: id, state, name",
                "  cancel JOB_ID                cancel a job (its last checkpoint is retained)",
                "  resume JOB [--jar FILE] [Sluice options]",
                "        submit JOB again from its newest state: the savepoint it was stopped with, else its newest retained",
                "        checkpoint (after the JobManager was lost: stop, start, then resume each job)",
                "  stop-job JOB_ID [--savepoint-dir DIR]",
                "        stop a job with a savepoint and print its path, for submit --from-savepoint",
                "every command takes --work-dir DIR (default " + DEFAULT_WORK_DIR + "), where the pids and logs are kept");
    }

    /** Runs one command; returns the exit code. */
    public int run(String[] argv) throws Exception {
        List<String> args = new ArrayList<>(List.of(argv));
        if (args.isEmpty() || args.contains("--help") || args.contains("-h")) {
            out.println(usage());
            return args.isEmpty() ? 2 : 0;
        }
        String command = args.remove(0);
        Path workDir = Path.of(option(args, "--work-dir", DEFAULT_WORK_DIR));
        Path confDir = Path.of(option(args, "--conf-dir", "flink-conf"));
        if (!Files.isRegularFile(confDir.resolve("config.yaml"))) {
            throw new UsageException("no config.yaml in " + confDir.toAbsolutePath() + ": run from the repository root or give --conf-dir");
        }
        StandaloneCluster cluster = new StandaloneCluster(workDir, confDir, classpath);
        switch (command) {
            case "start" -> start(cluster, args);
            case "status" -> {
                return status(cluster);
            }
            case "stop" -> {
                long t0 = System.nanoTime();
                out.println("sluice cluster: stopping ...");
                boolean any = cluster.stop(out);
                out.printf(Locale.ROOT, "sluice cluster: %s%n", any ? String.format(Locale.ROOT, "stopped in %.1f s", (System.nanoTime() - t0) / 1e9)
                        : "nothing was running from " + workDir);
            }
            case "submit" -> submit(cluster, args);
            case "resume" -> resume(cluster, args);
            case "list" -> {
                noMoreArgs(args);
                try (ClusterJobs jobs = jobs(cluster)) {
                    printJobs(jobs.list());
                }
            }
            case "cancel" -> {
                JobID id = jobId(args);
                try (ClusterJobs jobs = jobs(cluster)) {
                    jobs.cancel(id);
                }
                out.println("sluice cluster: cancelled " + id);
            }
            case "stop-job" -> {
                String dir = option(args, "--savepoint-dir", null);
                JobID id = jobId(args);
                long t0 = System.nanoTime();
                out.println("sluice cluster: stopping " + id + " with a savepoint ...");
                String path;
                Instant since = Instant.now().minusSeconds(1); // file times are coarser than the clock on some file systems
                try (ClusterJobs jobs = jobs(cluster)) {
                    try {
                        path = jobs.stopWithSavepoint(id, dir == null ? null : Path.of(dir).toAbsolutePath().toUri().toString());
                    } catch (ExecutionException | TimeoutException e) {
                        path = stoppedAnyway(cluster, jobs, id, dir, since, e);
                    }
                }
                out.printf(Locale.ROOT, "sluice cluster: stopped %s in %.1f s; savepoint %s%n", id, (System.nanoTime() - t0) / 1e9, path);
                out.println("  resume with: ./sluice cluster submit JOB --from-savepoint " + path);
                String stoppedWith = path;
                record(cluster, ledger -> ledger.stopped(id, stoppedWith));
            }
            default -> throw new UsageException("unknown command '" + command + "'\n" + usage());
        }
        return 0;
    }

    /**
     * The stop failed as the client saw it. If the job did finish (the stop went through and its answer was lost, e.g.
     * the request was sent again after the job had already ended), its savepoint is the one it wrote since the stop began;
     * otherwise the error says what state the job is in and why it ended.
     */
    private String stoppedAnyway(StandaloneCluster cluster, ClusterJobs jobs, JobID id, String dir, Instant since, Exception e) throws Exception {
        Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        JobStatus status;
        try {
            status = jobs.status(id);
        } catch (Exception unknown) {
            throw new IllegalStateException("stopping job " + id + " with a savepoint failed (" + cause + "), and the cluster does not know the job ("
                    + unknown.getMessage() + "): check the id with ./sluice cluster list", e);
        }
        if (status == JobStatus.FINISHED) {
            Optional<Path> savepoint = ledger(cluster).savepointOf(id.toHexString(), dir, since);
            if (savepoint.isPresent()) {
                out.println("sluice cluster: the stop's answer was lost (" + cause.getMessage() + "), but job " + id + " finished with a savepoint");
                return savepoint.get().toUri().toString();
            }
            throw new IllegalStateException("job " + id + " is FINISHED but wrote no savepoint in " + (dir == null ? "the savepoint directory" : dir)
                    + " since the stop began; the stop failed with " + cause, e);
        }
        String why = " (the job runs on: try stop-job again)";
        if (status.isGloballyTerminalState()) {
            try {
                why = "; it ended with " + jobs.outcome(id);
            } catch (Exception unknown) {
                why = "; why it ended is not known (" + unknown.getMessage() + ")";
            }
        }
        throw new IllegalStateException("stopping job " + id + " with a savepoint failed: " + cause + ". The cluster reports the job " + status + why, e);
    }

    private void start(StandaloneCluster cluster, List<String> args) throws Exception {
        int webPort = Integer.parseInt(option(args, "--web-port", "8081"));
        int taskManagers = Integer.parseInt(option(args, "--task-managers", "1"));
        if (taskManagers < 1) {
            throw new UsageException("--task-managers is " + taskManagers + ": give 1 or more");
        }
        Path stateDir = Path.of(option(args, "--state-dir", defaultStateDir())).toAbsolutePath();
        Map<String, String> overrides = new LinkedHashMap<>();
        while (!args.isEmpty()) {
            String a = args.remove(0);
            String kv;
            if (a.equals("-D") && !args.isEmpty()) {
                kv = args.remove(0);
            } else if (a.startsWith("-D") && a.length() > 2) {
                kv = a.substring(2);
            } else {
                throw new UsageException("start takes --web-port N, --task-managers N, --state-dir DIR and -D key=value, not '" + a + "'");
            }
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new UsageException("-D takes key=value, got '" + kv + "'");
            }
            overrides.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        // flink-conf's paths are a deployment's (/var/lib/sluice); on this machine they go under the state directory,
        // outside /tmp and target/, so that they survive a reboot and mvn clean
        overrides.putIfAbsent("execution.checkpointing.dir", stateDir.resolve("checkpoints").toUri().toString());
        overrides.putIfAbsent("execution.checkpointing.savepoint-dir", stateDir.resolve("savepoints").toUri().toString());
        out.println("sluice cluster: starting a JobManager and " + (taskManagers == 1 ? "a TaskManager" : taskManagers + " TaskManagers") + " with "
                + cluster.confDir().resolve("config.yaml") + " ...");
        long t0 = System.nanoTime();
        StandaloneCluster.Running r = cluster.start(webPort, overrides, taskManagers, Duration.ofSeconds(120), out);
        out.printf(Locale.ROOT, "sluice cluster: up in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        printRunning(cluster, r);
        out.println("  next             ./sluice cluster submit all   (then: list, stop-job ID, stop)");
    }

    private int status(StandaloneCluster cluster) throws Exception {
        Optional<StandaloneCluster.Running> r = cluster.running();
        if (r.isEmpty()) {
            out.println("sluice cluster: not running (start it with ./sluice cluster start)");
            return 3;
        }
        out.println("sluice cluster: running");
        printRunning(cluster, r.get());
        try (ClusterJobs jobs = jobs(cluster)) {
            printJobs(jobs.list());
        }
        return 0;
    }

    private void printRunning(StandaloneCluster cluster, StandaloneCluster.Running r) {
        out.println("  Flink web UI     " + r.rest());
        out.println("  jobmanager       pid " + r.jobManagerPid());
        for (long tm : r.taskManagerPids()) {
            out.println("  taskmanager      pid " + tm);
        }
        out.println("  logs             " + cluster.logDir());
        if (r.checkpointDir() != null) {
            out.println("  checkpoints      " + r.checkpointDir());
        }
    }

    private void submit(StandaloneCluster cluster, List<String> args) throws Exception {
        if (args.isEmpty() || args.get(0).startsWith("-")) {
            throw new UsageException("submit needs a job: subscriptions, aggregation, all (those two) or sidekiq-bridge");
        }
        String which = args.remove(0);
        String savepoint = option(args, "--from-savepoint", null);
        boolean allowNonRestored = args.remove("--allow-non-restored-state");
        File jar = new File(option(args, "--jar", DEFAULT_JAR));
        if (!jar.isFile()) {
            throw new UsageException("no job jar at " + jar.getAbsolutePath() + ": build it with mvn -pl jobs -am package -DskipTests"
                    + " (./sluice cluster does it for you)");
        }
        if (!args.contains("--config") && System.getenv("SLUICE_CONFIG") == null && Files.exists(CONNECTION_FILE)) {
            args.add(0, "--config");
            args.add(1, CONNECTION_FILE.toAbsolutePath().toString());
            out.println("sluice cluster: Sluice settings from " + CONNECTION_FILE + " (written by ./sluice local)");
        }
        Map<String, String> jobs = jobsIn(jar, "all");
        List<String> names = which.equals("all") ? new ArrayList<>(jobs.keySet()) : List.of(which);
        jobs.putAll(jobsIn(jar, "optional"));
        for (String n : names) {
            if (!jobs.containsKey(n)) {
                throw new UsageException("no job '" + n + "' in " + jar + "; it has " + String.join(", ", jobs.keySet()) + " (or all)");
            }
        }
        if (savepoint != null && names.size() > 1) {
            throw new UsageException("--from-savepoint restores one job: name it instead of 'all'");
        }
        try (ClusterJobs client = jobs(cluster)) {
            for (String n : names) {
                long t0 = System.nanoTime();
                JobID id = new JobID(); // chosen here and recorded first: a submission whose answer is lost is still known to resume
                record(cluster, ledger -> ledger.submitted(n, id, savepoint));
                try {
                    client.submit(jar, jobs.get(n), args, savepoint, allowNonRestored, id);
                } catch (java.util.concurrent.TimeoutException unknown) {
                    throw unknown; // the cluster may have taken it: the record stands
                } catch (Exception refused) {
                    record(cluster, ledger -> ledger.failed(id));
                    throw refused;
                }
                out.printf(Locale.ROOT, "  job %-13s submitted in %.1f s: %s%s%n", n, (System.nanoTime() - t0) / 1e9, id,
                        savepoint == null ? "" : " (from " + savepoint + ")");
            }
        }
    }

    /**
     * {@code resume JOB}: {@code submit JOB --from-savepoint} with the job's newest state as {@link JobLedger} finds it,
     * refused while a job of that name runs (two would write the same rows and fence each other's transactions).
     */
    private void resume(StandaloneCluster cluster, List<String> args) throws Exception {
        if (args.isEmpty() || args.get(0).startsWith("-")) {
            throw new UsageException("resume needs a job: subscriptions, aggregation or sidekiq-bridge");
        }
        String name = args.get(0);
        if (name.equals("all")) {
            throw new UsageException("resume takes one job at a time: subscriptions, aggregation or sidekiq-bridge");
        }
        JobLedger ledger;
        try {
            ledger = ledger(cluster);
        } catch (IllegalArgumentException e) {
            throw new UsageException("resume finds retained checkpoints on this machine: " + e.getMessage() + ". Give the state yourself: submit "
                    + name + " --from-savepoint PATH");
        }
        try (ClusterJobs jobs = jobs(cluster)) {
            for (JobStatusMessage j : jobs.list()) {
                if (j.getJobName().equals("sluice-" + name) && !j.getJobState().isGloballyTerminalState()) {
                    throw new UsageException("job " + j.getJobId() + " (sluice-" + name + ") is " + j.getJobState()
                            + " on this cluster: stop it first (stop-job " + j.getJobId() + "), then resume");
                }
            }
        }
        JobLedger.Latest latest = ledger.latest(name);
        out.println("sluice cluster: resuming " + name + " from " + latest.what() + ": " + latest.path());
        List<String> submitArgs = new ArrayList<>(args);
        submitArgs.addAll(1, List.of("--from-savepoint", latest.path()));
        submit(cluster, submitArgs);
    }

    /** The running cluster's {@link JobLedger}; IllegalArgumentException if its checkpoints are not on this machine. */
    private static JobLedger ledger(StandaloneCluster cluster) throws Exception {
        StandaloneCluster.Running r = cluster.running()
                .orElseThrow(() -> new UsageException("no cluster is running from " + cluster.logDir().getParent() + "; start one with ./sluice cluster start"));
        var conf = cluster.configuration(r.overrides());
        return JobLedger.of(cluster.logDir().getParent(), conf.get(org.apache.flink.configuration.CheckpointingOptions.CHECKPOINTS_DIRECTORY),
                conf.get(org.apache.flink.configuration.CheckpointingOptions.SAVEPOINT_DIRECTORY));
    }

    private interface LedgerWrite {
        void write(JobLedger ledger) throws Exception;
    }

    /** Writes to the ledger, or warns that resume will not know of it: what the record is about has happened either way. */
    private void record(StandaloneCluster cluster, LedgerWrite write) {
        try {
            write.write(ledger(cluster));
        } catch (Exception e) {
            out.println("sluice cluster: WARNING not recorded for resume (" + e.getMessage() + "); resume this job with submit --from-savepoint PATH");
        }
    }

    /** {@code $SLUICE_STATE_DIR}, else {@code $XDG_STATE_HOME/sluice}, else {@code ~/.local/state/sluice}. */
    static String defaultStateDir() {
        String explicit = System.getenv("SLUICE_STATE_DIR");
        if (explicit != null && !explicit.isBlank()) {
            return explicit;
        }
        String xdg = System.getenv("XDG_STATE_HOME");
        return (xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "state")).resolve("sluice").toString();
    }

    /**
     * The jobs the jar ships, name → main class, read from its own {@code SluiceJobs.all()} (or {@code optional()}) so this
     * list cannot drift; a jar without {@code optional()} has none.
     */
    static Map<String, String> jobsIn(File jar, String which) throws Exception {
        try (URLClassLoader cl = new URLClassLoader(new URL[] {jar.toURI().toURL()}, ClusterCommand.class.getClassLoader())) {
            Class<?> registry = Class.forName("io.sluice.jobs.SluiceJobs", true, cl);
            Method all;
            try {
                all = registry.getMethod(which);
            } catch (NoSuchMethodException older) {
                return new LinkedHashMap<>();
            }
            Map<String, String> out = new LinkedHashMap<>();
            for (Object job : (List<?>) all.invoke(null)) {
                out.put((String) job.getClass().getMethod("name").invoke(job), job.getClass().getName());
            }
            return out;
        } catch (ClassNotFoundException e) {
            throw new UsageException(jar + " is not Sluice's job jar (no io.sluice.jobs.SluiceJobs)");
        }
    }

    private ClusterJobs jobs(StandaloneCluster cluster) throws Exception {
        StandaloneCluster.Running r = cluster.running()
                .orElseThrow(() -> new UsageException("no cluster is running from " + cluster.logDir().getParent() + "; start one with ./sluice cluster start"));
        return new ClusterJobs(cluster.configuration(r.overrides()), r.webPort());
    }

    private void printJobs(List<JobStatusMessage> jobs) {
        if (jobs.isEmpty()) {
            out.println("  jobs             none");
        }
        for (JobStatusMessage j : jobs) {
            out.printf(Locale.ROOT, "  %s  %-10s %-24s started %s%n", j.getJobId(), j.getJobState(), j.getJobName(),
                    Instant.ofEpochMilli(j.getStartTime()));
        }
    }

    private static JobID jobId(List<String> args) {
        if (args.size() != 1) {
            throw new UsageException("give one job id (./sluice cluster list shows them), got " + args);
        }
        try {
            return JobID.fromHexString(args.get(0));
        } catch (IllegalArgumentException e) {
            throw new UsageException("'" + args.get(0) + "' is not a job id (32 hex digits; ./sluice cluster list shows them)");
        }
    }

    private static void noMoreArgs(List<String> args) {
        if (!args.isEmpty()) {
            throw new UsageException("unexpected arguments " + args);
        }
    }

    /** Removes {@code --name value} from {@code args} and returns the value, or {@code dflt}. */
    private static String option(List<String> args, String name, String dflt) {
        int i = args.indexOf(name);
        if (i < 0) {
            return dflt;
        }
        if (i + 1 >= args.size()) {
            throw new UsageException(name + " needs a value");
        }
        args.remove(i);
        return args.remove(i);
    }

    static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t == e ? String.valueOf(e.getMessage()) : e.getMessage() + " (caused by " + t + ")";
    }

    /** A mistake in the command line: exit code 2 and the message, no stack trace. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }
}
