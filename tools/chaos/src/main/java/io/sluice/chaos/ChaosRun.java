package io.sluice.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import io.sluice.cluster.ClusterCommand;
import io.sluice.cluster.StandaloneCluster;
import io.sluice.core.config.SluiceConfig;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.jobs.common.DeadLetterSerializer;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.Faults;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.LocalMachine;
import io.sluice.testkit.Plot;
import io.sluice.testkit.ReadSampler;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.TestStack;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;





import org.apache.kafka.clients.consumer.ConsumerRecord;



import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.concurrent.TimeUnit;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * One chaos run: the embedded Kafka, registry stand-in and two Postgres shards in this JVM; both jobs on a standalone
 * cluster of a JobManager and two TaskManager processes ({@link StandaloneCluster}); a live generator with malformed,
 * out-of-order, late and hot-key records and its oracle; and a seeded sequence of {@link Fault}s, each injected once
 * the jobs have recovered from the one before (time lag under 2 s for 5 s). The load lasts {@code duration}, or longer
 * until the jobs have recovered from the last fault (every kind's faults start by twice {@code duration}, or the run
 * fails). When the load is over and the jobs have
 * caught up, every row, push and dead letter is checked against the oracle.
 */
public final class ChaosRun {
    static final long LAG_OK_MS = 2_000;
    private static final long SUSTAIN_MS = 5_000;
    private static final Duration CHECKPOINT_TIMEOUT = Duration.ofSeconds(10);
    private static final List<String> JOBS = List.of("subscriptions", "aggregation");

    /**
     * @param perKind every kind at least this many times; then random kinds up to {@code faults}
     * @param root    the repository root: {@code flink-conf/}, the job jar and the cluster's classpath are found from it
     */
    public record Options(Duration duration, int faults, int perKind, long seed, int rate, List<Fault> kinds, Path root, Path workDir) {
    }

    /** One injected fault: what, when (s from the start of the load), until when, and how the jobs came back. */
    public record Injected(int n, Fault kind, double atS, double doneS, String detail, double recoveredS, long failedCheckpoints, double maxLagS) {
        /** Seconds from the injection until time lag was under 2 s (and stayed so for 5 s); NaN if it never was. */
        public double recoveryS() {
            return recoveredS - atS;
        }
    }

    /** What the checks found; every count but {@code sent} is 0 in a run that kept Sluice's promises. */
    public record Outcome(List<Injected> faults, long sent, long lostSubscriptionRows, long lostWindowRows, long missingPushes,
                          long duplicatedPushes, long missingDeadLetters, long regressions, List<String> problems, Path plot) {
        public long lost() {
            return lostSubscriptionRows + lostWindowRows + missingPushes + missingDeadLetters;
        }

        public double maxRecoveryS() {
            return faults.stream().mapToDouble(Injected::recoveryS).max().orElse(0);
        }

        public boolean ok() {
            return lost() == 0 && duplicatedPushes == 0 && regressions == 0 && problems.isEmpty()
                    && faults.stream().noneMatch(f -> Double.isNaN(f.recoveryS()));
        }

        public String resultLine() {
            return String.format(Locale.ROOT, "RESULT chaos faults=%d kinds=%d lost=%d duplicated_pushes=%d regressions=%d max_recovery_s=%.1f problems=%d",
                    faults.size(), faults.stream().map(Injected::kind).distinct().count(), lost(), duplicatedPushes, regressions, maxRecoveryS(), problems.size());
        }

        public String table() {
            StringBuilder b = new StringBuilder("| # | fault | at (s) | what | highest time lag (s) | recovered after (s) | failed checkpoints |\n"
                    + "| --- | --- | --- | --- | --- | --- | --- |\n");
            for (Injected f : faults) {
                b.append(String.format(Locale.ROOT, "| %d | %s | %.0f | %s | %.1f | %s | %d |%n", f.n(), f.kind().label, f.atS(), f.detail(), f.maxLagS(),
                        Double.isNaN(f.recoveryS()) ? "never" : String.format(Locale.ROOT, "%.1f", f.recoveryS()), f.failedCheckpoints()));
            }
            return b.toString();
        }
    }

    /** One reading of the monitor, every second. */
    private record Sample(double t, long sent, long[] committedPerShard, double[] lagMsPerJob, long failedCheckpoints) {
        double maxLagMs() {
            double m = 0;
            for (double l : lagMsPerJob) {
                m = Math.max(m, Double.isNaN(l) ? Double.POSITIVE_INFINITY : l);
            }
            return m;
        }
    }

    private final Options o;
    private final PrintStream out;
    private final Random random;
    private final List<Sample> samples = new CopyOnWriteArrayList<>();
    private final Map<String, String> jobIds = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<String, Integer> parallelism = new LinkedHashMap<>(Map.of("subscriptions", 2, "aggregation", 2));
    private final Map<String, Long> failedByJobId = new HashMap<>();
    private final List<String> runProblems = new CopyOnWriteArrayList<>();
    private final String[] common;
    private final String classpath;
    private StandaloneCluster cluster;
    private TestStack stack;
    private long startMs;
    private int rescales;

    public ChaosRun(Options options, PrintStream out) throws Exception {
        this.o = options;
        this.out = out;
        this.random = new Random(options.seed());
        Path clusterModule = o.root().resolve("tools/cluster/target");
        this.classpath = clusterModule.resolve("classes").toAbsolutePath() + java.io.File.pathSeparator
                + Files.readString(clusterModule.resolve("cluster-classpath.txt")).strip();
        this.common = new String[] {"--work-dir", o.workDir().resolve("cluster").toString(), "--conf-dir", o.root().resolve("flink-conf").toString()};
    }

    /**
     * The three late dead letters with the smallest {@code late by N ms}: the generator's late events are
     * {@code generator.late-by} (10 min) behind, so any much less late one is an on-time event the job judged late.
     */
    static List<String> leastLate(Map<String, String> reasons) {
        Pattern by = Pattern.compile("late by (-?\\d+) ms");
        return reasons.entrySet().stream()
                .sorted(Comparator.comparingLong(e -> {
                    Matcher m = by.matcher(e.getValue());
                    return m.find() ? Long.parseLong(m.group(1)) : Long.MAX_VALUE;
                }))
                .limit(3).map(e -> e.getKey() + ": " + e.getValue()).toList();
    }

    public Outcome run() throws Exception {
        // a run that was killed (its finally never ran) may have left its cluster behind: stop what is recorded first
        new StandaloneCluster(o.workDir().resolve("cluster"), o.root().resolve("flink-conf"), classpath).stop(out);
        LocalMachine.deleteRecursively(o.workDir());
        Files.createDirectories(o.workDir());
        List<Fault> schedule = Fault.schedule(o.kinds(), o.perKind(), o.faults(), random);
        out.printf(Locale.ROOT, "sluice chaos: seed %d, %d s of load or more (until the jobs recovered from the last fault) at %,d records/s, %d faults: %s%n", o.seed(), o.duration().toSeconds(), o.rate(),
                schedule.size(), Fault.labels(schedule));
        try (EmbeddedStack embedded = EmbeddedStack.start(2, 0)) { // any free port, bound at once; the registry-down fault reopens the same one
            Map<String, String> settings = new LinkedHashMap<>();
            settings.put("deployment.id", "chaos");
            settings.put("subscriptions.parallelism", "2");
            settings.put("aggregation.parallelism", "2");
            settings.put("aggregation.out-of-orderness", "5s");

            // event time advances 1/generator.rate per record, not counting the hot key's bursts (20% on top): so it keeps
            // pace with the wall clock, and time lag means what it says
            settings.put("generator.hot-key-fraction", "0.2");
            settings.put("generator.rate", String.valueOf(o.rate() / 1.2));
            settings.put("generator.count", "0"); // no limit: the load goes on until the faults are over (underLoad)
            settings.put("generator.apps", "50");
            settings.put("generator.users", "5000");
            settings.put("generator.update-fraction", "0.4");
            settings.put("generator.zipf-exponent", "0.8");
            settings.put("generator.hot-key", "true");
            settings.put("generator.out-of-order-fraction", "0.05");
            settings.put("generator.out-of-order-max", "3s");
            settings.put("generator.late-fraction", "0.002");
            settings.put("generator.malformed-fraction", "0.002");
            settings.put("generator.campaigns", "0");
            stack = new TestStack(embedded, embedded.namespace("chaos-", 6, settings));
            for (int i = 0; i < 2; i++) { // the shards are SIGKILLed: what they acknowledged must survive
                try (Connection c = stack.shard(i); Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT current_database()")) {
                    rs.next();
                    s.execute("ALTER DATABASE \"" + rs.getString(1) + "\" SET synchronous_commit = on");
                }
            }
            List<Campaign> campaigns = List.of(
                    new Campaign("buyers", RecordSequence.appId(1), "purchase", 2, 10 * 60_000, "Thanks!", 2_000, true),
                    new Campaign("browsers", RecordSequence.appId(2), "view", 3, 60_000, "Still looking?", 2_000, true));
            stack.send(campaigns.toArray(new Campaign[0]));

            int webPort = LocalMachine.freePort();
            cluster = new StandaloneCluster(o.workDir().resolve("cluster"), o.root().resolve("flink-conf"), classpath);
            Map<String, String> flink = new LinkedHashMap<>();
            flink.put("execution.checkpointing.dir", o.workDir().resolve("checkpoints").toUri().toString());
            flink.put("execution.checkpointing.savepoint-dir", o.workDir().resolve("savepoints").toUri().toString());
            flink.put("execution.checkpointing.timeout", CHECKPOINT_TIMEOUT.toSeconds() + "s");
            flink.put("jobmanager.rpc.port", String.valueOf(LocalMachine.freePort())); // not 6123: a developer's cluster may hold it
            flink.put("taskmanager.load-balance.mode", "SLOTS"); // both TaskManagers run tasks: killing either one hits the jobs
            flink.put("heartbeat.interval", "2s");
            flink.put("heartbeat.timeout", "10s");
            flink.put("restart-strategy.exponential-delay.max-backoff", "5s");
            long t0 = System.nanoTime();
            Thread stopOnExit = new Thread(() -> {
                try {
                    cluster.stop(System.err);
                } catch (Exception e) {
                    System.err.println("sluice chaos: stopping the cluster: " + e);
                }
            }, "chaos-cluster-stop");
            Runtime.getRuntime().addShutdownHook(stopOnExit); // Ctrl-C: the cluster's processes run in sessions of their own
            StandaloneCluster.Running r = cluster.start(webPort, flink, 2, Duration.ofMinutes(2), out);
            out.printf(Locale.ROOT, "sluice chaos: cluster up in %.1f s (JobManager pid %d, TaskManagers %s, web UI %s); %s%n", (System.nanoTime() - t0) / 1e9,
                    r.jobManagerPid(), r.taskManagerPids(), r.rest(), flink);
            try {
                return underLoad(schedule, campaigns, new FlinkRest(r.rest()));
            } finally {
                cluster.stop(out);
                Runtime.getRuntime().removeShutdownHook(stopOnExit);
            }
        }
    }

    private Outcome underLoad(List<Fault> schedule, List<Campaign> campaigns, FlinkRest rest) throws Exception {
        for (String job : JOBS) {
            jobIds.putAll(jobIdsIn(sluiceCluster("submit", job, "--jar", jar()), job));
        }
        // campaigns apply to events processed after their definitions arrive: the oracle expects a push for every segment
        // member, so the load starts once the aggregation job has them all
        io.sluice.testkit.TestFlink.awaitMetric(rest, jobIds.get("aggregation"), "detect segment entries", "activeCampaigns", "min",
                v -> v == campaigns.size(), java.time.Duration.ofMinutes(2));
        List<Injected> injected = new ArrayList<>();
        AtomicBoolean monitoring = new AtomicBoolean(true);
        Oracle oracle;
        long sent;
        List<String> sampled = appsOnEveryShard();
        try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), o.rate(), System.currentTimeMillis(), true);
             ReadSampler subscriptions = new ReadSampler(stack, sampled,
                "SELECT subscription_id, version, properties::text FROM subscriptions WHERE app_id = ?");
             ReadSampler windows = new ReadSampler(stack, sampled,
                     "SELECT user_id || '/' || event_name || '/' || window_start, count, sum::text FROM user_event_counts WHERE app_id = ?");
             StackProbe probe = StackProbe.tolerant(stack.config())) {
            startMs = System.currentTimeMillis();
            g.start();
            Thread monitor = new Thread(() -> monitor(g, probe, rest, monitoring), "chaos-monitor");
            monitor.setDaemon(true);
            monitor.start();
            try {
                if (Double.isNaN(awaitRecovery(0, Duration.ofMinutes(2)))) { // both jobs running and caught up before the first fault
                    throw new IllegalStateException("the jobs' time lag was not under 2 s within 2 min of the start; the cluster's logs are in "
                            + cluster.logDir());
                }
                // every kind perKind times, whatever it takes (each started by twice --duration): the load goes on until the jobs
                // have recovered from the last fault, because recovery is measured on time lag, which only means something while
                // records come
                int required = o.kinds().size() * o.perKind();
                long endOfLoad = startMs + o.duration().toMillis();
                long cap = startMs + 2 * o.duration().toMillis();
                // the repeats after that only as --duration allows, so they do not make the run longer than that by much: a slow
                // one (Fault.slow) takes up to about 90 s, so none in its last 90 s (or 30%), none at all in its last 30 s (or 15%)
                long endOfFaults = endOfLoad - Math.max(30_000, o.duration().toMillis() * 15 / 100);
                long endOfSlowFaults = endOfLoad - Math.max(90_000, o.duration().toMillis() * 30 / 100);
                for (int i = 0; i < schedule.size(); i++) {
                    Fault kind = schedule.get(i);
                    long pauseMs = 1_000 + random.nextInt(2_000); // the pause before each fault
                    long faultAtMs = System.currentTimeMillis() + pauseMs; // when it would start, which the cap bounds
                    if (g.failure() != null || !g.isRunning()) { // reported when it is stopped, below
                        out.printf(Locale.ROOT, "[%4.0fs] the load generator stopped (%s); no more faults%n", now(), g.failure());
                        break;
                    }
                    if (i < required ? faultAtMs >= cap : faultAtMs >= endOfFaults) {
                        out.printf(Locale.ROOT, "[%4.0fs] %d faults not injected: %s%n", now(), schedule.size() - i, i < required
                                ? "the run reached twice --duration before every kind had come" : "too little of --duration left");
                        if (i < required) {
                            runProblems.add("faults not injected by twice --duration: " + Fault.labels(schedule.subList(i, required)));
                        }
                        break;
                    }
                    if (i >= required && kind.slow && faultAtMs >= endOfSlowFaults) {
                        out.printf(Locale.ROOT, "[%4.0fs] fault %s not injected: %.0f s of --duration left, too little for a slow one%n", now(), kind.label,
                                (endOfLoad - faultAtMs) / 1000.0);
                        continue;
                    }
                    Thread.sleep(pauseMs);
                    double at = now();
                    long failedBefore = failedCheckpoints();
                    out.printf(Locale.ROOT, "[%4.0fs] fault %d/%d: %s ...%n", at, injected.size() + 1, schedule.size(), kind.label);
                    String detail;
                    try {
                        detail = inject(kind, rest);
                    } catch (InterruptedException e) {
                        throw e;
                    } catch (Exception | AssertionError e) { // AssertionError: a wait of the test kit's that timed out
                        // the checks still run: what the jobs wrote so far, and the cluster's view, explain more than a stack trace
                        runProblems.add("fault " + (injected.size() + 1) + " (" + kind.label + ") could not be injected: " + e
                                + "; the cluster's jobs: " + jobStates(rest) + "; its logs are in " + cluster.logDir());
                        out.printf(Locale.ROOT, "[%4.0fs] fault %d %s FAILED: %s; no more faults%n", now(), injected.size() + 1, kind.label, e);
                        e.printStackTrace(out);
                        break;
                    }
                    double done = now();
                    double recovered = awaitRecovery(done, Duration.ofMinutes(3));
                    Injected f = new Injected(injected.size() + 1, kind, at, done, detail, recovered, failedCheckpoints() - failedBefore,
                            maxLagS(at, recovered));
                    injected.add(f);
                    out.printf(Locale.ROOT, "[%4.0fs] fault %d %s: %s; time lag under 2 s again %s%n", now(), f.n(), kind.label, detail,
                            Double.isNaN(f.recoveryS()) ? "NEVER (gave up after 3 min)" : String.format(Locale.ROOT, "%.1f s after the injection", f.recoveryS()));
                }
                long left = endOfLoad - System.currentTimeMillis();
                if (left > 0 && g.failure() == null) { // the load lasts at least --duration
                    Thread.sleep(left);
                }
                try {
                    g.stop();
                } catch (Exception e) { // the checks still run, on what was acknowledged: the problem says why they differ
                    runProblems.add("the load generator failed after " + g.acked() + " acknowledged records: " + e);
                }
                oracle = g.oracle();
                sent = g.acked();
                out.printf(Locale.ROOT, "[%4.0fs] the load is over: %,d records sent; waiting for the jobs to catch up%n", now(), sent);
            } finally {
                monitoring.set(false);
            }
            return check(injected, oracle, campaigns, sent, subscriptions, windows);
        }
    }

    /** The busiest app of each shard (the generator's apps by rank), so every shard's rows are sampled. */
    private List<String> appsOnEveryShard() {
        List<String> apps = new ArrayList<>();
        Set<Integer> shards = new HashSet<>();
        for (int rank = 1; rank < 100 && shards.size() < stack.config().shards().list().size(); rank++) {
            String app = RecordSequence.appId(rank);
            if (shards.add(stack.config().router().shardOf(app))) {
                apps.add(app);
            }
        }
        return apps;
    }

    private String inject(Fault kind, FlinkRest rest) throws Exception {
        switch (kind) {
            case TASKMANAGER_SIGKILL -> {
                long pid = busyTaskManager(rest);
                Set<String> before = taskManagerIds(rest);
                cluster.kill(pid);
                long started = cluster.addTaskManager(Duration.ofMinutes(2));
                // done when the JobManager has dropped the dead one (heartbeat timeout) and counts the new one: only then have
                // the jobs met the loss, and the recovery is measured from there
                long t = System.nanoTime();
                while (true) {
                    Set<String> now = taskManagerIds(rest);
                    if (now.size() == before.size() && !now.containsAll(before)) {
                        break;
                    }
                    if (System.nanoTime() - t > Duration.ofMinutes(2).toNanos()) {
                        throw new IllegalStateException("the JobManager still lists TaskManagers " + now + " 2 min after pid " + pid + " was killed");
                    }
                    Thread.sleep(250);
                }
                return String.format(Locale.ROOT, "TaskManager pid %d killed; pid %d started; the JobManager dropped the dead one after %.1f s",
                        pid, started, (System.nanoTime() - t) / 1e9);
            }
            case JOBMANAGER_SIGKILL -> {
                long pid = cluster.running().orElseThrow().jobManagerPid();
                cluster.kill(pid);
                long t = System.nanoTime();
                long started = cluster.restartJobManager(Duration.ofMinutes(3));
                double released = (System.nanoTime() - t) / 1e9;
                List<String> from = new ArrayList<>();
                for (String job : JOBS) {
                    String output = sluiceCluster("resume", job, "--jar", jar());
                    jobIds.putAll(jobIdsIn(output, job));
                    from.add(find(output, "(resuming " + job + " from [^\\n]*?): "));
                    checkRestored(rest, job, find(output, "resuming " + job + " from [^\\n]*?: (\\S+)"));
                }
                return String.format(Locale.ROOT, "JobManager pid %d killed; pid %d started, TaskManagers re-registered with every slot free after %.1f s; %s",
                        pid, started, released, String.join(", ", from));
            }
            case SHARD_SIGKILL -> {
                int shard = random.nextInt(2);
                stack.stack().postgres.kill(shard);
                Thread.sleep(3_000);
                stack.stack().postgres.restart(shard);
                return "shard " + shard + " killed, restarted after 3 s";
            }
            case CONNECTIONS_KILLED -> {
                int killed = Faults.killConnections(stack, 0) + Faults.killConnections(stack, 1);
                if (killed == 0) {
                    runProblems.add("connections-killed found no sink connection of the jobs to kill");
                }
                return killed + " sink connections of the jobs terminated on both shards (and every other connection)";
            }
            case SHARD_LOCKED -> {
                int shard = random.nextInt(2);
                long holdMs = CHECKPOINT_TIMEOUT.toMillis() + 5_000;
                try (Connection c = stack.shard(shard); Statement s = c.createStatement()) {
                    c.setAutoCommit(false);
                    s.execute("SET LOCAL idle_in_transaction_session_timeout = 0");
                    s.execute("LOCK TABLE subscriptions, user_event_counts IN ACCESS EXCLUSIVE MODE");
                    Thread.sleep(holdMs);
                    c.rollback();
                }
                return "shard " + shard + "'s tables locked for " + holdMs / 1000 + " s (checkpoint timeout " + CHECKPOINT_TIMEOUT.toSeconds() + " s)";
            }
            case RESCALE -> {
                // 2 -> 3 -> 2 for one job (taking turns): each step a stop with a savepoint and a resume from it; the
                // downscale starts from a savepoint the 3 subtasks took after a checkpoint of their own
                String job = JOBS.get(rescales++ % JOBS.size());
                List<String> steps = new ArrayList<>();
                for (int to : new int[] {3, 2}) {
                    int from = parallelism.get(job);
                    String savepoint = find(sluiceCluster("stop-job", jobIds.get(job)), "; savepoint (\\S+)");
                    parallelism.put(job, to);
                    jobIds.putAll(jobIdsIn(sluiceCluster("submit", job, "--jar", jar(), "--from-savepoint", savepoint), job));
                    checkRestored(rest, job, savepoint);
                    awaitCompletedCheckpoint(rest, job);
                    steps.add(from + " -> " + to);
                }
                return job + " rescaled " + String.join(", ", steps) + ", each from a savepoint";
            }
            case REGISTRY_DOWN -> {
                stack.stack().registry.unreachableFor(Duration.ofSeconds(5));
                return "registry refused connections for 5 s";
            }
            case BROKER_RESTART -> {
                long t = System.nanoTime();
                stack.stack().kafka.restartBroker(Duration.ofSeconds(3));
                return String.format(Locale.ROOT, "broker down for 3 s, serving again after %.1f s (same port and log directories)", (System.nanoTime() - t) / 1e9);
            }
            default -> throw new IllegalStateException(kind.label);
        }
    }

    /** Waits (at most 60 s) until {@code job}'s current run has completed a checkpoint of its own. */
    private void awaitCompletedCheckpoint(FlinkRest rest, String job) throws InterruptedException {
        String id = jobIds.get(job);
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline) {
            try {
                if (rest.completedCheckpointCount(id) > 0) {
                    return;
                }
            } catch (Exception notYet) {
                // the job is still being scheduled
            }
            Thread.sleep(250);
        }
        runProblems.add(job + " (" + id + ") completed no checkpoint within 60 s of its restore");
    }

    /**
     * A live TaskManager that runs tasks (a slot taken), chosen at random among those: a TaskManager that has just
     * replaced a killed one may hold none yet, and killing it would break nothing.
     */
    private long busyTaskManager(FlinkRest rest) throws Exception {
        Set<String> busy = new HashSet<>();
        rest.get("/taskmanagers").path("taskmanagers").forEach(tm -> {
            if (tm.path("freeSlots").asInt() < tm.path("slotsNumber").asInt()) {
                busy.add(tm.path("id").asText());
            }
        });
        List<Long> live = cluster.running().orElseThrow().liveTaskManagers();
        List<Long> candidates = new ArrayList<>();
        for (long pid : live) {
            if (cluster.resourceIdOf(pid).filter(busy::contains).isPresent()) {
                candidates.add(pid);
            }
        }
        if (candidates.isEmpty()) {
            runProblems.add("no live TaskManager runs a task (busy: " + busy + "), so the TaskManager kill hit an idle one");
            candidates = live;
        }
        return candidates.get(random.nextInt(candidates.size()));
    }

    /**
     * Reports the job class loaders each TaskManager holds as the checks begin (each job has at most one per
     * TaskManager while it runs there), counted with {@code jcmd} after a full GC, for the run's report. Not a check: a
     * TaskManager can keep the loader of a job that left it for minutes although nothing strongly refers to it any more
     * (docs/chaos.md); ClusterITCase checks the release after an upgrade, and the full run's TaskManagers survive.
     */
    private void reportClassLoaders() {
        try {
            for (long pid : cluster.running().orElseThrow().liveTaskManagers()) {
                out.printf(Locale.ROOT, "sluice chaos: TaskManager pid %d holds %d job class loaders (%d jobs running)%n", pid,
                        LocalMachine.jobClassLoaders(pid), JOBS.size());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            out.println("sluice chaos: WARNING the TaskManagers' class loaders could not be counted: " + e);
        }
    }

    /** id, name and state of every job the JobManager knows, for a problem's text. */
    private static String jobStates(FlinkRest rest) {
        try {
            List<String> jobs = new ArrayList<>();
            rest.get("/jobs/overview").path("jobs").forEach(j -> jobs.add(j.path("jid").asText() + " " + j.path("name").asText() + " "
                    + j.path("state").asText()));
            return String.join(", ", jobs);
        } catch (Exception e) {
            return "(not readable: " + e + ")";
        }
    }

    private static Set<String> taskManagerIds(FlinkRest rest) throws Exception {
        Set<String> ids = new HashSet<>();
        rest.get("/taskmanagers").path("taskmanagers").forEach(tm -> ids.add(tm.path("id").asText()));
        return ids;
    }

    /** Waits (at most 60 s) until {@code job}'s current run reports that it restored {@code path}; a run that did not is a problem. */
    private void checkRestored(FlinkRest rest, String job, String path) throws InterruptedException {
        String id = jobIds.get(job);
        long deadline = System.currentTimeMillis() + 60_000;
        String restored = "";
        while (restored.isEmpty() && System.currentTimeMillis() < deadline) {
            try {
                restored = rest.get("/jobs/" + id + "/checkpoints").path("latest").path("restored").path("external_path").asText("");
            } catch (Exception notYet) {
                // the job is still being scheduled
            }
            if (restored.isEmpty()) {
                Thread.sleep(250);
            }
        }
        if (!Path.of(strip(restored)).normalize().equals(Path.of(strip(path)).normalize())) {
            runProblems.add(job + " (" + id + ") restored '" + restored + "', not " + path);
        }
        try {
            for (JsonNode v : rest.get("/jobs/" + id).path("vertices")) {
                if (v.path("parallelism").asInt() != parallelism.get(job)) {
                    runProblems.add(job + " (" + id + ") runs '" + v.path("name").asText() + "' at parallelism " + v.path("parallelism").asInt()
                            + ", not " + parallelism.get(job));
                }
            }
        } catch (Exception e) {
            runProblems.add(job + " (" + id + "): its vertices could not be read: " + e);
        }
    }

    private static String strip(String path) {
        return path.replaceFirst("^file:(//)?", "");
    }

    /** Runs {@code ./sluice cluster ARGS} in this JVM with the job's Sluice settings appended; returns what it printed. */
    private String sluiceCluster(String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(1, List.of(common));
        if (List.of("submit", "resume").contains(args[0])) {
            String job = args[1];
            all.add("--config"); // an empty file: else submit reads ./sluice local's connection file, if there is one
            all.add(emptyConfig().toString());
            stack.namespace().settings().forEach((k, v) -> {
                if (!k.startsWith("generator.") && !k.equals(job + ".parallelism")) {
                    all.add("--" + k);
                    all.add(v);
                }
            });
            all.add("--" + job + ".parallelism");
            all.add(String.valueOf(parallelism.get(job)));
        }
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        int code = new ClusterCommand(new PrintStream(buffer, true, StandardCharsets.UTF_8), classpath).run(all.toArray(String[]::new));
        String text = buffer.toString(StandardCharsets.UTF_8);
        if (code != 0) {
            throw new IllegalStateException("./sluice cluster " + String.join(" ", args) + " exited with " + code + ":\n" + text);
        }
        return text;
    }

    private Path emptyConfig() throws java.io.IOException {
        Path f = o.workDir().resolve("empty-config.yaml");
        if (!Files.exists(f)) {
            Files.writeString(f, "# the chaos run gives every setting as an argument\n{}\n");
        }
        return f;
    }

    private String jar() {
        return o.root().resolve("jobs/target/sluice-jobs.jar").toString();
    }

    private static Map<String, String> jobIdsIn(String output, String job) {
        return Map.of(job, find(output, "job " + Pattern.quote(job) + "\\s+submitted in [\\d.]+ s: ([0-9a-f]{32})"));
    }

    private static String find(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        if (!m.find()) {
            throw new IllegalStateException("expected '" + regex + "' in:\n" + text);
        }
        return m.group(1);
    }

    private double now() {
        return (System.currentTimeMillis() - startMs) / 1000.0;
    }

    /**
     * Waits until every sample from {@code fromS} on for {@link #SUSTAIN_MS} has both jobs' time lag under 2 s; returns
     * the time (s) of the first of them, or NaN after {@code timeout}.
     */
    private double awaitRecovery(double fromS, Duration timeout) throws InterruptedException {
        // only called while the load runs (underLoad stops it after the last fault's recovery): once it is over, time
        // lag only grows, as there is no newer event to commit
        long deadline = System.currentTimeMillis() + timeout.toMillis();
        while (System.currentTimeMillis() < deadline) {
            double okSince = Double.NaN;
            double previous = Double.NaN;
            for (Sample s : samples) {
                if (s.t() < fromS) {
                    continue;
                }
                // a gap in the readings (a monitor stalled on a dead shard) is not healthy time
                boolean gap = !Double.isNaN(previous) && s.t() - previous > 1.5;
                previous = s.t();
                if (s.maxLagMs() < LAG_OK_MS && !gap) {
                    if (Double.isNaN(okSince)) {
                        okSince = s.t();
                    }
                    if ((s.t() - okSince) * 1000 >= SUSTAIN_MS) {
                        return okSince;
                    }
                } else {
                    okSince = s.maxLagMs() < LAG_OK_MS ? s.t() : Double.NaN;
                }
            }
            Thread.sleep(500);
        }
        return Double.NaN;
    }

    /** The highest time lag (s) of either job between {@code fromS} and {@code toS} (the end of the readings if NaN). */
    private double maxLagS(double fromS, double toS) {
        double max = 0;
        for (Sample s : samples) {
            if (s.t() >= fromS && (Double.isNaN(toS) || s.t() <= toS)) {
                max = Math.max(max, s.maxLagMs() / 1000);
            }
        }
        return max;
    }

    private long failedCheckpoints() {
        synchronized (failedByJobId) {
            return failedByJobId.values().stream().mapToLong(Long::longValue).sum();
        }
    }

    /** Every second: records sent, each shard's committed source position, each job's time lag, failed checkpoints. */
    private void monitor(LoadGenerator g, StackProbe probe, FlinkRest rest, AtomicBoolean running) {
        Map<String, long[]> newestKnown = new HashMap<>();
        Connection[] shards = new Connection[2];
        long nextPrint = System.currentTimeMillis() + 10_000;
        while (running.get()) {
            long tick = System.currentTimeMillis();
            try {
                nextPrint = sample(g, probe, rest, newestKnown, shards, tick, nextPrint);
            } catch (RuntimeException e) { // a reading that failed is a gap, which awaitRecovery does not count as healthy
                System.err.println("sluice chaos: the monitor could not read the stack: " + e);
            }
            try {
                Thread.sleep(Math.max(0, 1_000 - (System.currentTimeMillis() - tick)));
            } catch (InterruptedException e) {
                return;
            }
        }
        for (Connection c : shards) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (SQLException ignored) {
                // closing a connection to a shard that is gone
            }
        }
    }

    private long sample(LoadGenerator g, StackProbe probe, FlinkRest rest, Map<String, long[]> newestKnown, Connection[] shards, long tick,
                        long nextPrint) {
        long[] committed = new long[2];
        for (int i = 0; i < 2; i++) {
            committed[i] = committedPosition(shards, i);
        }
        double[] lags = new double[JOBS.size()];
        for (int j = 0; j < JOBS.size(); j++) {
            long[] perShard = probe.newestCommittedPerShard(JOBS.get(j));
            long readAt = System.currentTimeMillis();
            long[] known = newestKnown.computeIfAbsent(JOBS.get(j), k -> new long[perShard.length]);
            long oldest = Long.MAX_VALUE;
            for (int i = 0; i < perShard.length; i++) {
                known[i] = Math.max(known[i], perShard[i]); // a shard that does not answer keeps its last known time
                oldest = Math.min(oldest, known[i]);
            }
            lags[j] = oldest == 0 ? Double.NaN : Math.max(0, readAt - oldest);
        }
        for (String id : new ArrayList<>(jobIds.values())) {
            try {
                JsonNode counts = rest.get("/jobs/" + id + "/checkpoints").path("counts");
                synchronized (failedByJobId) {
                    failedByJobId.put(id, counts.path("failed").asLong(0));
                }
            } catch (Exception unreachable) {
                // the JobManager is down or does not know the job (any more): its last count stands
            }
        }
        Sample s = new Sample((tick - startMs) / 1000.0, g.acked(), committed, lags, failedCheckpoints());
        samples.add(s);
        if (tick >= nextPrint) {
            out.printf(Locale.ROOT, "[%4.0fs] sent %,d | committed position shard 0 %,d, shard 1 %,d | time lag subscriptions %s, aggregation %s | failed checkpoints %d%n",
                    s.t(), s.sent(), committed[0], committed[1], seconds(lags[0]), seconds(lags[1]), s.failedCheckpoints());
            nextPrint = tick + 10_000;
        }
        return nextPrint;
    }

    private static String seconds(double ms) {
        return Double.isNaN(ms) ? "n/a" : String.format(Locale.ROOT, "%.1f s", ms / 1000);
    }

    /** Shard {@code i}'s committed source position, summed over jobs and partitions (offset + 1); -1 if it does not answer. */
    private long committedPosition(Connection[] shards, int i) {
        try {
            if (shards[i] == null || !shards[i].isValid(1)) {
                shards[i] = stack.shard(i);
            }
            try (Statement s = shards[i].createStatement();
                 ResultSet rs = s.executeQuery("SELECT coalesce(sum(committed_offset + 1), 0) FROM sluice_partition_progress")) {
                rs.next();
                return rs.getLong(1);
            }
        } catch (SQLException e) {
            shards[i] = null;
            return -1;
        }
    }

    private Outcome check(List<Injected> injected, Oracle oracle, List<Campaign> campaigns, long sent, ReadSampler subscriptions, ReadSampler windows)
            throws Exception {
        List<String> problems = new ArrayList<>(runProblems);
        SluiceConfig config = stack.config();
        // beside the wait for the rows: how many job class loaders each TaskManager still holds
        java.util.concurrent.CompletableFuture<Void> loaders = java.util.concurrent.CompletableFuture.runAsync(this::reportClassLoaders);
        // rows: wait (at most 3 min) until they equal the oracle, then count what differs
        Map<String, Map<String, String>> expectedSubscriptions = TestStack.expectedRows(oracle);
        Map<String, Oracle.WindowRow> expectedWindows = oracle.windowCounts(60_000);
        Map<String, String> expectedPushes = oracle.pushJobs(campaigns);
        long waitStart = System.currentTimeMillis();
        long deadline = waitStart + 180_000;
        long nextProgress = waitStart + 30_000;
        Map<String, Map<String, String>> rows = stack.subscriptionRows();
        Map<String, Oracle.WindowRow> windowRows = stack.windowRows();
        List<PushJob> pushes = stack.pushJobs();
        boolean converged;
        while (!(converged = rows.equals(expectedSubscriptions) && sameCounts(windowRows, expectedWindows)
                && pushes.stream().map(PushJob::jobId).collect(Collectors.toSet()).containsAll(expectedPushes.keySet()))
                && System.currentTimeMillis() < deadline) {
            if (System.currentTimeMillis() >= nextProgress) { // a progress line, so a run cut short still says what it waited for
                nextProgress += 30_000;
                out.printf(Locale.ROOT, "[%4.0fs] still waiting: %s; %s%n", now(), stillDiffering(rows, expectedSubscriptions, windowRows,
                        expectedWindows, pushes, expectedPushes), StackProbe.pushQueueState(config));
            }
            Thread.sleep(1_000);
            rows = stack.subscriptionRows();
            windowRows = stack.windowRows();
            pushes = stack.pushJobs();
        }
        out.printf(Locale.ROOT, "[%4.0fs] rows and push jobs %s %.1f s after the load ended%n", now(),
                converged ? "equal the oracle" : "still differ from the oracle", (System.currentTimeMillis() - waitStart) / 1e3);
        long lostSubscriptions = differing(rows, expectedSubscriptions, problems, "subscriptions");
        long lostWindows = 0;
        for (var e : expectedWindows.entrySet()) {
            Oracle.WindowRow actual = windowRows.get(e.getKey());
            if (actual == null || actual.count() != e.getValue().count() || Math.abs(actual.sum() - e.getValue().sum()) > 1e-6) {
                lostWindows++;
                if (lostWindows <= 3) {
                    problems.add("user_event_counts " + e.getKey() + ": " + actual + ", expected " + e.getValue());
                }
            }
        }
        Set<String> extraWindows = new HashSet<>(windowRows.keySet());
        extraWindows.removeAll(expectedWindows.keySet());
        if (!extraWindows.isEmpty()) {
            problems.add(extraWindows.size() + " user_event_counts rows the oracle does not have, e.g. " + extraWindows.iterator().next());
        }
        Map<String, Long> perId = pushes.stream().collect(Collectors.groupingBy(PushJob::jobId, Collectors.counting()));
        long duplicated = perId.values().stream().filter(n -> n > 1).mapToLong(n -> n - 1).sum();
        long missingPushes = expectedPushes.keySet().stream().filter(id -> !perId.containsKey(id)).count();
        long unexpected = perId.keySet().stream().filter(id -> !expectedPushes.containsKey(id)).count();
        if (missingPushes > 0) {
            out.println("sluice chaos: missing push jobs, e.g. " + expectedPushes.entrySet().stream().filter(e -> !perId.containsKey(e.getKey()))
                    .limit(5).map(e -> e.getKey() + " (" + e.getValue() + ")").toList() + "; " + StackProbe.pushQueueState(config));
        }
        if (unexpected > 0) {
            problems.add(unexpected + " push jobs the oracle does not have");
        }
        // dead letters: every malformed record (decode) and every late event (late), counted by distinct source offset
        Map<String, Set<String>> deadByStage = new HashMap<>();
        Map<String, String> lateReasons = new TreeMap<>(); // source position -> reason, to show which events were late if too many were
        for (ConsumerRecord<byte[], byte[]> d : stack.readAll(config.kafka().deadLettersTopic())) {
            String stage = TestStack.header(d, DeadLetterSerializer.STAGE);
            String position = TestStack.header(d, DeadLetterSerializer.TOPIC) + "/" + TestStack.header(d, DeadLetterSerializer.PARTITION) + "/"
                    + TestStack.header(d, DeadLetterSerializer.OFFSET);
            deadByStage.computeIfAbsent(stage, k -> new HashSet<>()).add(position);
            if ("late".equals(stage)) {
                lateReasons.put(position, TestStack.header(d, DeadLetterSerializer.REASON) + " (dead letter at offset " + d.offset() + ")");
            }
        }
        long decode = deadByStage.getOrDefault("decode", Set.of()).size();
        long late = deadByStage.getOrDefault("late", Set.of()).size();
        long missingDead = Math.max(0, oracle.malformedTotal() - decode) + Math.max(0, oracle.lateEvents() - late);
        if (decode != oracle.malformedTotal() || late != oracle.lateEvents()) {
            problems.add("dead letters by distinct source offset: decode " + decode + " of " + oracle.malformedTotal() + " malformed, late " + late + " of "
                    + oracle.lateEvents() + " late events; all stages " + deadByStage.keySet() + "; the least late of them: " + leastLate(lateReasons));
        }
        if (expectedSubscriptions.isEmpty() || expectedWindows.isEmpty() || expectedPushes.isEmpty() || oracle.malformedTotal() == 0
                || oracle.lateEvents() == 0) {
            problems.add("the oracle expects nothing of something: " + expectedSubscriptions.size() + " subscription rows, " + expectedWindows.size()
                    + " window rows, " + expectedPushes.size() + " pushes, " + oracle.malformedTotal() + " malformed, " + oracle.lateEvents()
                    + " late: such a run checks nothing there (a higher --rate or --duration)");
        }
        for (ReadSampler sampler : List.of(subscriptions, windows)) {
            if (sampler.reads() < 100) {
                problems.add("a row sampler read only " + sampler.reads() + " times: no regression could have been seen");
            }
        }
        long regressions = subscriptions.regressions().size() + windows.regressions().size();
        if (regressions > 0) {
            problems.add("rows that moved backwards: " + subscriptions.regressions().stream().limit(2).toList() + windows.regressions().stream().limit(2).toList());
        }
        out.printf(Locale.ROOT, "sluice chaos: checked %,d subscription rows, %,d window rows, %,d push jobs, %,d + %,d dead letters against the oracle; "
                        + "%,d + %,d sampled reads%n", expectedSubscriptions.size(), expectedWindows.size(), expectedPushes.size(), oracle.malformedTotal(),
                oracle.lateEvents(), subscriptions.reads(), windows.reads());
        Path plot = o.workDir().resolve("chaos-timeline.png");
        try {
            plot(injected, plot);
        } catch (Exception | Error e) { // no fonts on a headless machine, say: the checks stand without the picture
            out.println("sluice chaos: WARNING the timeline could not be drawn: " + e);
        }
        loaders.join();
        return new Outcome(injected, sent, lostSubscriptions, lostWindows, missingPushes, duplicated, missingDead, regressions, problems, plot);
    }

    private static String stillDiffering(Map<String, Map<String, String>> rows, Map<String, Map<String, String>> expectedRows,
            Map<String, Oracle.WindowRow> windowRows, Map<String, Oracle.WindowRow> expectedWindows, List<PushJob> pushes,
            Map<String, String> expectedPushes) {
        long rowsOff = expectedRows.entrySet().stream().filter(e -> !e.getValue().equals(rows.get(e.getKey()))).count();
        long windowsOff = expectedWindows.entrySet().stream()
                .filter(e -> windowRows.get(e.getKey()) == null || windowRows.get(e.getKey()).count() != e.getValue().count()).count();
        Set<String> seen = pushes.stream().map(PushJob::jobId).collect(Collectors.toSet());
        long pushesMissing = expectedPushes.keySet().stream().filter(id -> !seen.contains(id)).count();
        return String.format(Locale.ROOT, "%,d of %,d subscription rows differ, %,d of %,d window counts differ, %,d of %,d push jobs missing",
                rowsOff, expectedRows.size(), windowsOff, expectedWindows.size(), pushesMissing, expectedPushes.size());
    }

    private static boolean sameCounts(Map<String, Oracle.WindowRow> actual, Map<String, Oracle.WindowRow> expected) {
        return actual.size() == expected.size() && expected.entrySet().stream()
                .allMatch(e -> actual.containsKey(e.getKey()) && actual.get(e.getKey()).count() == e.getValue().count());
    }

    private static long differing(Map<String, Map<String, String>> actual, Map<String, Map<String, String>> expected, List<String> problems, String table) {
        long n = 0;
        for (var e : expected.entrySet()) {
            if (!e.getValue().equals(actual.get(e.getKey()))) {
                n++;
                if (n <= 3) {
                    problems.add(table + " " + e.getKey() + ": " + actual.get(e.getKey()) + ", expected " + e.getValue());
                }
            }
        }
        long extra = actual.keySet().stream().filter(k -> !expected.containsKey(k)).count();
        if (extra > 0) {
            problems.add(extra + " " + table + " rows the oracle does not have");
        }
        return n;
    }

    /** The timeline: input rate, committed rate per shard, time lag per job; the faults marked. */
    private void plot(List<Injected> injected, Path png) throws Exception {
        List<Sample> s = new ArrayList<>(samples);
        int n = Math.max(0, s.size() - 1);
        double[] t = new double[n];
        double[] input = new double[n];
        double[][] shard = new double[2][n];
        double[][] lag = new double[JOBS.size()][n];
        for (int i = 0; i < n; i++) {
            Sample a = s.get(i);
            Sample b = s.get(i + 1);
            double dt = Math.max(0.001, b.t() - a.t());
            t[i] = b.t();
            input[i] = (b.sent() - a.sent()) / dt;
            for (int k = 0; k < 2; k++) {
                shard[k][i] = a.committedPerShard()[k] < 0 || b.committedPerShard()[k] < 0 ? Double.NaN
                        : Math.max(0, b.committedPerShard()[k] - a.committedPerShard()[k]) / dt;
            }
            for (int j = 0; j < JOBS.size(); j++) {
                lag[j][i] = b.lagMsPerJob()[j] / 1000;
            }
        }
        List<Plot.Marker> markers = injected.stream().map(f -> new Plot.Marker(f.atS(), f.kind().label)).toList();
        Plot.timeline(String.format(Locale.ROOT, "sluice chaos, seed %d: %d faults, %,d records/s; %s, %d cores, %s", o.seed(), injected.size(), o.rate(),
                        LocalDate.now(), Runtime.getRuntime().availableProcessors(), System.getProperty("os.name")), "seconds since the load started",
                List.of(new Plot.Panel("input", "records/s", List.of(new Plot.Series("sent", t, input))),
                        new Plot.Panel("committed per shard", "source records/s", List.of(new Plot.Series("shard 0", t, shard[0]),
                                new Plot.Series("shard 1", t, shard[1]))),
                        new Plot.Panel("time lag", "s", List.of(new Plot.Series("subscriptions", t, lag[0]), new Plot.Series("aggregation", t, lag[1])))),
                markers, png);
    }
}
