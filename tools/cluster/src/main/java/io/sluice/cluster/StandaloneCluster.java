package io.sluice.cluster;

import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.GlobalConfiguration;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.Reader;
import java.io.Writer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A standalone Flink session cluster on this machine: one JobManager process and one or more TaskManager
 * processes, started the way Flink's {@code bin/jobmanager.sh} and {@code bin/taskmanager.sh} start
 * them, but from Maven-resolved jars instead of a distribution (docs/stack.md): the memory
 * arguments come from {@code BashJavaUtils}, the JVM options from {@code env.java.opts.*} of the
 * configuration directory ({@code flink-conf/}), logs go to {@code WORK_DIR/log/}.
 *
 * <p>The processes outlive the command that starts them; {@code WORK_DIR/cluster.properties} records
 * their pids and the web port, so that {@code status}, {@code stop} and the job commands find them.
 */
public final class StandaloneCluster {
    static final String JOBMANAGER_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint";
    static final String TASKMANAGER_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner";
    private static final String BASH_JAVA_UTILS = "org.apache.flink.runtime.util.bash.BashJavaUtils";
    private static final String STATE_FILE = "cluster.properties";
    private static final String OVERRIDE = "override.";
    private static final String ROCKSDB_MUSL_LIBC = "ROCKSDB_MUSL_LIBC";

    private final Path workDir;
    private final Path confDir;
    private final String classpath;

    /**
     * @param workDir   where the state file and logs go
     * @param confDir   the Flink configuration directory ({@code flink-conf/}: {@code config.yaml}, {@code log4j.properties})
     * @param classpath the cluster's classpath (this module's runtime dependencies)
     */
    public StandaloneCluster(Path workDir, Path confDir, String classpath) {
        this.workDir = workDir.toAbsolutePath();
        this.confDir = confDir.toAbsolutePath();
        this.classpath = classpath;
    }

    /** What {@link #start} left behind: the processes and the web UI. */
    /**
     * {@code overrides}: the {@code -D} settings the processes got over {@code config.yaml}; a job submitted to them gets
     * the same, since a job's own configuration (checkpoint directory included) wins over the cluster's.
     * {@code checkpointDir}: their {@code execution.checkpointing.dir}, where {@link JobLedger} keeps its record; null if unset.
     */
    public record Running(long jobManagerPid, List<Long> taskManagerPids, int webPort, Path confDir, Map<String, String> overrides,
                          String checkpointDir) {
        public URI rest() {
            return URI.create("http://localhost:" + webPort);
        }

        public boolean alive() {
            return isOurs(jobManagerPid, JOBMANAGER_MAIN) || taskManagerPids.stream().anyMatch(p -> isOurs(p, TASKMANAGER_MAIN));
        }

        /** The TaskManagers whose processes are still there. */
        public List<Long> liveTaskManagers() {
            return taskManagerPids.stream().filter(p -> isOurs(p, TASKMANAGER_MAIN)).toList();
        }
    }

    /** {@link #start(int, Map, int, Duration, PrintStream)} with one TaskManager. */
    public Running start(int webPort, Map<String, String> overrides, Duration timeout, PrintStream out) throws Exception {
        return start(webPort, overrides, 1, timeout, out);
    }

    /**
     * Starts the JobManager and {@code taskManagers} TaskManagers and waits until they have registered their
     * slots (at most {@code timeout}). {@code overrides} are Flink settings given as {@code -D}
     * options to every process (e.g. a checkpoint directory), over {@code config.yaml}.
     */
    public Running start(int webPort, Map<String, String> overrides, int taskManagers, Duration timeout, PrintStream out) throws Exception {
        Optional<Running> already = running();
        if (already.isPresent()) {
            throw new IllegalStateException("a cluster started from " + workDir + " is already running (web UI " + already.get().rest()
                    + "); stop it first with ./sluice cluster stop");
        }
        try (java.net.Socket s = new java.net.Socket()) { // else /overview would answer from whatever holds the port
            s.connect(new java.net.InetSocketAddress("localhost", webPort), 500);
            throw new IllegalStateException("port " + webPort + " is in use (is ./sluice local running?); stop that or start with --web-port N");
        } catch (IOException free) {
            // nothing listens: good
        }
        Files.createDirectories(workDir.resolve("log"));
        Map<String, String> dynamic = new LinkedHashMap<>(overrides);
        dynamic.put("rest.port", String.valueOf(webPort));
        Configuration conf = configuration(dynamic);

        // the memory arguments, as Flink's scripts compute them (both at once: each is a JVM start)
        var jmParams = java.util.concurrent.CompletableFuture.supplyAsync(() -> resourceParams("GET_JM_RESOURCE_PARAMS", dynamic));
        var tmParams = java.util.concurrent.CompletableFuture.supplyAsync(() -> resourceParams("GET_TM_RESOURCE_PARAMS", dynamic));
        List<String> jvmOpts = split(conf.get(CoreOptions.FLINK_JVM_OPTIONS));

        Process jm = launch("jobmanager", JOBMANAGER_MAIN, jmParams.join(), concat(jvmOpts, split(conf.get(CoreOptions.FLINK_JM_JVM_OPTIONS))), dynamic);
        List<Process> tms = new ArrayList<>();
        try {
            for (int i = 0; i < taskManagers; i++) {
                tms.add(launch(taskManagerRole(i), TASKMANAGER_MAIN, tmParams.join(), concat(jvmOpts, split(conf.get(CoreOptions.FLINK_TM_JVM_OPTIONS))), dynamic));
            }
        } catch (Exception e) {
            for (Process tm : tms) {
                stopProcess(tm.pid(), TASKMANAGER_MAIN, out);
            }
            stopProcess(jm.pid(), JOBMANAGER_MAIN, out);
            throw e;
        }
        Running r = new Running(jm.pid(), tms.stream().map(Process::pid).toList(), webPort, confDir, Map.copyOf(dynamic),
                conf.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY));
        writeState(r);
        Map<String, ProcessHandle> watched = new LinkedHashMap<>();
        watched.put("jobmanager", jm.toHandle());
        for (int i = 0; i < tms.size(); i++) {
            watched.put(taskManagerRole(i), tms.get(i).toHandle());
        }
        try {
            awaitSlots(r, watched, taskManagers, false, timeout);
        } catch (Exception e) {
            stop(out);
            throw e;
        }
        return r;
    }

    /**
     * Starts one more TaskManager for the running cluster, with its settings, and waits (at most {@code timeout}) until
     * the JobManager counts as many TaskManagers as are alive, returning its pid. A TaskManager that was killed is
     * replaced this way; until the JobManager drops the dead one (heartbeat timeout) it still counts, so the wait can
     * end before the new one has registered.
     */
    public long addTaskManager(Duration timeout) throws Exception {
        Running r = running().orElseThrow(() -> new IllegalStateException("no cluster is running from " + workDir));
        Configuration conf = configuration(r.overrides());
        List<String> params = resourceParams("GET_TM_RESOURCE_PARAMS", r.overrides());
        String role = taskManagerRole(r.taskManagerPids().size());
        Process tm = launch(role, TASKMANAGER_MAIN, params,
                concat(split(conf.get(CoreOptions.FLINK_JVM_OPTIONS)), split(conf.get(CoreOptions.FLINK_TM_JVM_OPTIONS))), r.overrides());
        List<Long> pids = new ArrayList<>(r.taskManagerPids());
        pids.add(tm.pid());
        Running now = new Running(r.jobManagerPid(), pids, r.webPort(), r.confDir(), r.overrides(), r.checkpointDir());
        writeState(now);
        awaitSlots(now, Map.of(role, tm.toHandle()), now.liveTaskManagers().size(), false, timeout);
        return tm.pid();
    }

    /**
     * Starts a JobManager again after the last one died (without HA it knows no job), with the cluster's settings and
     * port, and waits until every live TaskManager has registered with it and released the old JobManager's tasks (all
     * slots free, at most {@code timeout}): only then can a resumed job not meet the old one's tasks still writing.
     */
    public long restartJobManager(Duration timeout) throws Exception {
        Running r = recorded().orElseThrow(() -> new IllegalStateException("no cluster was started from " + workDir));
        if (isOurs(r.jobManagerPid(), JOBMANAGER_MAIN)) {
            throw new IllegalStateException("the JobManager (pid " + r.jobManagerPid() + ") is still running");
        }
        Configuration conf = configuration(r.overrides());
        Process jm = launch("jobmanager", JOBMANAGER_MAIN, resourceParams("GET_JM_RESOURCE_PARAMS", r.overrides()),
                concat(split(conf.get(CoreOptions.FLINK_JVM_OPTIONS)), split(conf.get(CoreOptions.FLINK_JM_JVM_OPTIONS))), r.overrides());
        Running now = new Running(jm.pid(), r.taskManagerPids(), r.webPort(), r.confDir(), r.overrides(), r.checkpointDir());
        writeState(now);
        awaitSlots(now, Map.of("jobmanager", jm.toHandle()), now.liveTaskManagers().size(), true, timeout);
        return jm.pid();
    }

    /** SIGKILL to a process of this cluster, as a crash; returns once it is gone. */
    public void kill(long pid) throws Exception {
        ProcessHandle h = ProcessHandle.of(pid).filter(ph -> isOurs(ph, JOBMANAGER_MAIN) || isOurs(ph, TASKMANAGER_MAIN))
                .orElseThrow(() -> new IllegalStateException("pid " + pid + " is not a running process of this cluster"));
        h.destroyForcibly();
        h.onExit().get(30, TimeUnit.SECONDS);
    }

    /** The ResourceID the TaskManager with {@code pid} registered under (the id {@code /taskmanagers} lists), from its log. */
    public Optional<String> resourceIdOf(long pid) throws IOException {
        Optional<Running> r = recorded();
        int index = r.map(run -> run.taskManagerPids().indexOf(pid)).orElse(-1);
        if (index < 0) {
            return Optional.empty();
        }
        Path log = logDir().resolve("flink-" + taskManagerRole(index) + ".log");
        if (!Files.isRegularFile(log)) {
            return Optional.empty();
        }
        Matcher m = Pattern.compile("Starting TaskManager with ResourceID: (\\S+)").matcher(Files.readString(log));
        String id = null;
        while (m.find()) {
            id = m.group(1);
        }
        return Optional.ofNullable(id);
    }

    private static String taskManagerRole(int index) {
        return index == 0 ? "taskmanager" : "taskmanager-" + (index + 1);
    }

    /** The cluster recorded in the work directory, if its processes are still there. */
    public Optional<Running> running() throws IOException {
        return recorded().filter(Running::alive);
    }

    /** Stops both processes (SIGTERM, then SIGKILL after 30 s) and forgets them; true if there was something to stop. */
    public boolean stop(PrintStream out) throws Exception {
        Optional<Running> recorded = recorded();
        if (recorded.isEmpty()) {
            return false;
        }
        boolean stopped = false;
        for (long tm : recorded.get().taskManagerPids()) {
            stopped |= stopProcess(tm, TASKMANAGER_MAIN, out);
        }
        stopped |= stopProcess(recorded.get().jobManagerPid(), JOBMANAGER_MAIN, out);
        Files.delete(workDir.resolve(STATE_FILE));
        return stopped;
    }

    /** What {@link #writeState} recorded in the work directory, whether or not its processes still run. */
    private Optional<Running> recorded() throws IOException {
        Path state = workDir.resolve(STATE_FILE);
        if (!Files.isRegularFile(state)) {
            return Optional.empty();
        }
        Properties p = new Properties();
        try (Reader in = Files.newBufferedReader(state)) {
            p.load(in);
        }
        Map<String, String> overrides = new LinkedHashMap<>();
        for (String k : p.stringPropertyNames()) {
            if (k.startsWith(OVERRIDE)) {
                overrides.put(k.substring(OVERRIDE.length()), p.getProperty(k));
            }
        }
        String tms = p.getProperty("taskmanager.pids", p.getProperty("taskmanager.pid", "")); // .pid: one, as written before
        return Optional.of(new Running(Long.parseLong(p.getProperty("jobmanager.pid")),
                Arrays.stream(tms.split(",")).filter(t -> !t.isBlank()).map(Long::parseLong).toList(),
                Integer.parseInt(p.getProperty("web-port")), Path.of(p.getProperty("conf-dir")), overrides, p.getProperty("checkpoint-dir")));
    }

    public Path confDir() {
        return confDir;
    }

    public Path logDir() {
        return workDir.resolve("log");
    }

    /** {@code config.yaml} of the configuration directory with {@code dynamic} on top, as the processes see it. */
    public Configuration configuration(Map<String, String> dynamic) {
        return GlobalConfiguration.loadConfiguration(confDir.toString(), Configuration.fromMap(dynamic));
    }

    private Process launch(String role, String mainClass, List<String> resourceParams, List<String> jvmOpts, Map<String, String> dynamic)
            throws IOException {
        List<String> cmd = new ArrayList<>();
        if (new File("/usr/bin/setsid").canExecute()) {
            cmd.add("/usr/bin/setsid"); // its own session: a Ctrl-C in the terminal that started it does not reach it
        }
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(split(resourceParams.get(0)));
        cmd.addAll(jvmOpts);
        cmd.add("-Dlog.file=" + logDir().resolve("flink-" + role + ".log"));
        cmd.add("-Dlog4j.configurationFile=" + confDir.resolve("log4j.properties").toUri());
        cmd.add("-classpath");
        cmd.add(classpath);
        cmd.add(mainClass);
        cmd.add("--configDir");
        cmd.add(confDir.toString());
        dynamic.forEach((k, v) -> {
            cmd.add("-D");
            cmd.add(k + "=" + v);
        });
        if (resourceParams.size() > 1) {
            cmd.addAll(split(resourceParams.get(1))); // the TaskManager's computed memory settings, as -D k=v
        }
        ProcessBuilder pb = new ProcessBuilder(cmd);
        answerRocksDbMuslQuestion(pb.environment(), Path.of("/lib"));
        return pb
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logDir().resolve("flink-" + role + ".out").toFile())) // a restarted JobManager adds to it
                .redirectErrorStream(true)
                .start();
    }

    /** The lines {@code BashJavaUtils COMMAND} prints after its result prefix: JVM arguments, then dynamic settings. */
    private List<String> resourceParams(String command, Map<String, String> dynamic) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx128m", "-classpath", classpath, BASH_JAVA_UTILS, command, "--configDir", confDir.toString()));
        dynamic.forEach((k, v) -> {
            cmd.add("-D");
            cmd.add(k + "=" + v);
        });
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String output;
            try (InputStream in = p.getInputStream()) {
                output = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            p.waitFor(60, TimeUnit.SECONDS);
            List<String> result = new ArrayList<>();
            for (String line : output.split("\n")) {
                if (line.startsWith("BASH_JAVA_UTILS_EXEC_RESULT:")) {
                    result.add(line.substring("BASH_JAVA_UTILS_EXEC_RESULT:".length()).trim());
                }
            }
            if (result.isEmpty()) {
                throw new IllegalStateException(BASH_JAVA_UTILS + " " + command + " failed on " + confDir + ":\n" + output.strip());
            }
            return result;
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException(BASH_JAVA_UTILS + " " + command + ": " + e, e);
        }
    }

    /**
     * Waits until {@code /overview} counts at least {@code taskManagers} TaskManagers (and, if {@code allSlotsFree}, no
     * slot taken), failing early with its last log lines if a {@code watched} process exits.
     */
    private void awaitSlots(Running r, Map<String, ProcessHandle> watched, int taskManagers, boolean allSlotsFree, Duration timeout) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "no answer";
        while (System.nanoTime() < deadline) {
            for (var e : watched.entrySet()) {
                if (!e.getValue().isAlive()) {
                    throw new IllegalStateException("the " + e.getKey() + " (pid " + e.getValue().pid() + ") exited; its last lines:\n"
                            + tail(logDir().resolve("flink-" + e.getKey() + ".out"), logDir().resolve("flink-" + e.getKey() + ".log")));
                }
            }
            try {
                HttpResponse<String> resp = http.send(HttpRequest.newBuilder(r.rest().resolve("/overview")).timeout(Duration.ofSeconds(5)).build(),
                        HttpResponse.BodyHandlers.ofString());
                last = resp.body();
                if (resp.statusCode() == 200 && number(last, "taskmanagers") >= taskManagers
                        && (!allSlotsFree || number(last, "slots-available") == number(last, "slots-total"))) {
                    return;
                }
            } catch (IOException notYet) {
                // the web UI is not listening yet
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException("the cluster at " + r.rest() + "/overview did not report " + taskManagers + " TaskManager(s)"
                + (allSlotsFree ? " with every slot free" : "") + " within " + timeout.toSeconds() + " s (last: " + last + "); logs in " + logDir());
    }

    private static long number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\"\\s*:\\s*(\\d+)").matcher(json);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    private static String tail(Path... files) throws IOException {
        StringBuilder b = new StringBuilder();
        for (Path f : files) {
            if (Files.isRegularFile(f)) {
                List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
                b.append("==> ").append(f).append('\n');
                lines.subList(Math.max(0, lines.size() - 20), lines.size()).forEach(l -> b.append(l).append('\n'));
            }
        }
        return b.toString();
    }

    private void writeState(Running r) throws IOException {
        Properties p = new Properties();
        p.setProperty("jobmanager.pid", String.valueOf(r.jobManagerPid()));
        p.setProperty("taskmanager.pids", String.join(",", r.taskManagerPids().stream().map(String::valueOf).toList()));
        p.setProperty("web-port", String.valueOf(r.webPort()));
        p.setProperty("conf-dir", r.confDir().toString());
        if (r.checkpointDir() != null) {
            p.setProperty("checkpoint-dir", r.checkpointDir());
        }
        r.overrides().forEach((k, v) -> p.setProperty(OVERRIDE + k, v));
        try (Writer w = Files.newBufferedWriter(workDir.resolve(STATE_FILE))) {
            p.store(w, "written by ./sluice cluster start; removed by ./sluice cluster stop");
        }
    }

    private static boolean stopProcess(long pid, String mainClass, PrintStream out) throws Exception {
        Optional<ProcessHandle> h = ProcessHandle.of(pid).filter(ph -> isOurs(ph, mainClass));
        if (h.isEmpty()) {
            return false;
        }
        String role = mainClass.equals(JOBMANAGER_MAIN) ? "jobmanager" : "taskmanager";
        long t0 = System.nanoTime();
        h.get().destroy();
        try {
            h.get().onExit().get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            out.println("sluice cluster: the " + role + " (pid " + pid + ") did not stop within 30 s of SIGTERM; killing it");
            h.get().destroyForcibly();
            h.get().onExit().get(10, TimeUnit.SECONDS);
        }
        out.printf(Locale.ROOT, "  %-12s pid %d stopped in %.1f s%n", role, pid, (System.nanoTime() - t0) / 1e9);
        return true;
    }

    private static boolean isOurs(long pid, String mainClass) {
        return ProcessHandle.of(pid).filter(ph -> isOurs(ph, mainClass)).isPresent();
    }

    /** A pid is ours if it is alive and runs that entry point (a recycled pid is not killed). */
    private static boolean isOurs(ProcessHandle ph, String mainClass) {
        if (!ph.isAlive()) {
            return false;
        }
        Optional<String[]> args = ph.info().arguments();
        if (args.isPresent()) {
            return Arrays.asList(args.get()).contains(mainClass);
        }
        try { // ProcessHandle.Info can't read long command lines on Linux; /proc can
            byte[] cmdline = Files.readAllBytes(Path.of("/proc", String.valueOf(ph.pid()), "cmdline"));
            return new String(cmdline, StandardCharsets.UTF_8).contains(mainClass);
        } catch (IOException e) {
            return false;
        }
    }

    static List<String> split(String s) {
        if (s == null || s.isBlank()) {
            return List.of();
        }
        return List.of(s.trim().split("\\s+"));
    }

    /**
     * Sets {@code ROCKSDB_MUSL_LIBC} for a process unless its environment already says {@code true} or {@code false}.
     * Without it, RocksDB's JNI loader runs {@code ldd} to learn whether the libc is musl, from the task that first opens
     * RocksDB state on a TaskManager. The JDK's reaper thread for that process keeps the task's context class loader, the
     * job's, and idles 60 s before it ends: a job stopped or upgraded within a minute of that start kept its classes that
     * long. The answer comes from {@code libDir} where it is plain: {@code true} where musl's libc
     * ({@code libc.musl-ARCH.so.1}, the library RocksDB's musl build links against) is there, {@code false} where no
     * musl file is. Where only musl's loader {@code ld-musl-ARCH.so.1} is (Debian's musl package beside glibc, or a musl
     * system that names its libc otherwise), or the directory cannot be read, RocksDB asks {@code ldd} itself.
     */
    static void answerRocksDbMuslQuestion(Map<String, String> env, Path libDir) {
        String given = env.get(ROCKSDB_MUSL_LIBC);
        if ("true".equalsIgnoreCase(given) || "false".equalsIgnoreCase(given)) {
            return;
        }
        try {
            if (any(libDir, "libc.musl-*")) {
                env.put(ROCKSDB_MUSL_LIBC, "true");
            } else if (!any(libDir, "ld-musl-*")) {
                env.put(ROCKSDB_MUSL_LIBC, "false");
            }
        } catch (IOException e) {
            // nothing to read there: RocksDB asks ldd itself
        }
    }

    private static boolean any(Path dir, String glob) throws IOException {
        try (DirectoryStream<Path> found = Files.newDirectoryStream(dir, glob)) {
            return found.iterator().hasNext();
        }
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }
}
