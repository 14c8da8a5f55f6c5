package io.sluice.cluster;

import io.sluice.testkit.LocalMachine;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;
import io.sluice.testkit.Await;
import io.sluice.testkit.ReadSampler;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoublePredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Sluice as it runs in production, end to end: {@code ./sluice cluster start} (a JobManager and a
 * TaskManager process from Maven-resolved jars), {@code submit all} of the shaded jar against the
 * embedded Kafka, registry stand-in and Postgres, the custom metrics read from the REST API while
 * the jobs run, then an upgrade: {@code stop-job} with a savepoint for both jobs while load keeps
 * coming, and a resubmission from the savepoints with a changed setting, after which the TaskManager must free the
 * stopped jobs' class loaders (none pinned by a thread or a JDBC driver registration). Afterwards the rows equal
 * the oracle (counts continued across the upgrade), each push job is on the queue once, no sampled
 * row moved backwards, and {@code stop} leaves no process.
 */
@ExtendWith(SluiceStackExtension.class)
class ClusterITCase {
    private static final long MINUTE = 60_000;
    private static final Path JAR = Path.of("../../jobs/target/sluice-jobs.jar");

    @Test
    void jobsOnAStandaloneClusterWriteTheOracleAndAnUpgradeFromSavepointsCarriesTheirState(TestStack base) throws Exception {
        Path work = Path.of("target/cluster-it").toAbsolutePath(); // kept after the run: the processes' logs are in cluster/log
        LocalMachine.deleteRecursively(work);
        Map<String, String> settings = new HashMap<>(Map.of("generator.count", "0", "generator.rate", "3000", "generator.apps", "50",
                "generator.users", "4000", "generator.update-fraction", "0.4", "generator.out-of-order-fraction", "0.1",
                "generator.out-of-order-max", "4s", "generator.campaigns", "0", "generator.malformed-fraction", "0.005",
                "aggregation.out-of-orderness", "5s"));
        settings.put("generator.zipf-exponent", "0.8");
        TestStack stack = base.fresh(settings);
        List<Campaign> campaigns = List.of(
                new Campaign("buyers", RecordSequence.appId(1), "purchase", 2, 10 * MINUTE, "Thanks!", 2_000, true),
                new Campaign("browsers", RecordSequence.appId(2), "view", 3, MINUTE, "Still looking?", 2_000, true));
        stack.send(campaigns.toArray(new Campaign[0]));

        int webPort = LocalMachine.freePort();
        String[] common = {"--work-dir", work.resolve("cluster").toString(), "--conf-dir", "../../flink-conf"};
        String started = sluiceCluster(common, "start", "--web-port", String.valueOf(webPort),
                "-D", "execution.checkpointing.dir=" + work.resolve("checkpoints").toUri(),
                "-D", "execution.checkpointing.savepoint-dir=" + work.resolve("savepoints").toUri());
        try {
            assertThat(started).contains("Flink web UI     http://localhost:" + webPort);
            System.out.println("cluster start: " + find(started, "up in ([\\d.]+) s") + " s");
            List<Long> pids = new ArrayList<>();
            for (String role : List.of("jobmanager", "taskmanager")) {
                long pid = Long.parseLong(find(started, role + "\\s+pid (\\d+)"));
                assertThat(ProcessHandle.of(pid)).as(role + " process").isPresent();
                pids.add(pid);
            }

            List<String> submitArgs = new ArrayList<>(List.of("submit", "all", "--jar", JAR.toString()));
            submitArgs.addAll(stack.namespace().args());
            String submitted = sluiceCluster(common, submitArgs.toArray(String[]::new));
            Map<String, String> jobIds = jobIds(submitted);
            assertThat(jobIds).containsOnlyKeys("subscriptions", "aggregation");
            System.out.println("submission: " + submitted.lines().filter(l -> l.contains("submitted in")).toList());
            FlinkRest rest = new FlinkRest(URI.create("http://localhost:" + webPort));
            String listed = Await.until("both jobs RUNNING in ./sluice cluster list", Duration.ofMinutes(1),
                    () -> sluiceCluster(common, "list"), l -> jobIds.values().stream().allMatch(id -> l.contains(id + "  RUNNING")));
            assertThat(listed).contains(jobIds.get("subscriptions") + "  RUNNING").contains(jobIds.get("aggregation") + "  RUNNING");
            awaitMetric(rest, jobIds.get("aggregation"), "detect segment entries", "activeCampaigns", v -> v == 2);

            Oracle oracle;
            try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 3_000, System.currentTimeMillis(), true).start();
                 ReadSampler subscriptions = new ReadSampler(stack, List.of(RecordSequence.appId(1), RecordSequence.appId(7)),
                         "SELECT subscription_id, version, properties::text FROM subscriptions WHERE app_id = ?");
                 ReadSampler windows = new ReadSampler(stack, List.of(RecordSequence.appId(1), RecordSequence.appId(3)),
                         "SELECT user_id || '/' || event_name || '/' || window_start, count, sum::text FROM user_event_counts WHERE app_id = ?")) {
                Await.until("25,000 records sent", Duration.ofMinutes(2), () -> g.acked() >= 25_000);
                assertCustomMetrics(rest, jobIds);

                // the upgrade: both jobs stop with a savepoint while records keep coming, and come back from it with a changed setting
                Map<String, String> savepoints = new LinkedHashMap<>();
                for (var job : jobIds.entrySet()) {
                    String stopped = sluiceCluster(common, "stop-job", job.getValue());
                    savepoints.put(job.getKey(), find(stopped, "; savepoint (\\S+)"));
                    System.out.println(stopped.lines().filter(l -> l.contains("stopped")).findFirst().orElse(stopped));
                }
                long sentWhileStopped = g.acked();
                Map<String, String> upgraded = new LinkedHashMap<>();
                for (var sp : savepoints.entrySet()) {
                    List<String> args = new ArrayList<>(List.of("submit", sp.getKey(), "--jar", JAR.toString(), "--from-savepoint", sp.getValue()));
                    args.addAll(stack.namespace().args());
                    args.addAll(List.of("--aggregation.emit-interval", "2s"));
                    upgraded.putAll(jobIds(sluiceCluster(common, args.toArray(String[]::new))));
                }
                assertThat(g.acked()).as("records sent while the jobs were stopped").isGreaterThan(sentWhileStopped - 1);
                for (var job : upgraded.entrySet()) {
                    String restored = Await.until("the upgraded " + job.getKey() + " job to report its restore", Duration.ofMinutes(1),
                            () -> restoredFrom(rest, job.getValue()), p -> !p.isEmpty());
                    assertThat(restored).as("the upgraded " + job.getKey() + " job restored from").isEqualTo(savepoints.get(job.getKey()));
                }
                String afterUpgrade = sluiceCluster(common, "list");
                assertThat(afterUpgrade).contains(jobIds.get("aggregation") + "  FINISHED").contains(jobIds.get("subscriptions") + "  FINISHED");
                // the stopped jobs' classes leave the TaskManager with them: their class loaders are freed once nothing (a
                // thread, a JDBC driver registration) refers to them, else each upgrade or restart costs ~20 MB of metaspace.
                // 4-8 s here; 25-37 s while RocksDB's ldd reaper thread held them (docs/cluster.md), so 20 s fails if it
                // comes back
                long t = System.nanoTime();
                int loaders = Await.until("the TaskManager to hold only the 2 running jobs' class loaders", Duration.ofSeconds(20),
                        Duration.ofSeconds(1), () -> LocalMachine.jobClassLoaders(pids.get(1)), n -> n <= 2);
                System.out.printf("job class loaders on the TaskManager after the upgrade: %d, %.1f s after the submissions%n", loaders,
                        (System.nanoTime() - t) / 1e9);

                // the JobManager is lost (SIGKILL, no HA: the new one will not know the jobs) while records keep coming; the
                // documented recovery: stop what is left (the TaskManager still runs the old tasks), start, resume each job
                Await.until("40,000 records sent", Duration.ofMinutes(2), () -> g.acked() >= 40_000);
                for (var job : upgraded.entrySet()) {
                    Await.until("a retained checkpoint of the upgraded " + job.getKey() + " job", Duration.ofMinutes(1),
                            () -> retainedCheckpoints(work, job.getValue()), n -> n > 0);
                }
                assertThat(g.isRunning()).as("the generator still sending when the JobManager is killed").isTrue();
                ProcessHandle jobManager = ProcessHandle.of(pids.get(0)).orElseThrow();
                jobManager.destroyForcibly();
                jobManager.onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
                sluiceCluster(common, "stop");
                String restarted = sluiceCluster(common, "start", "--web-port", String.valueOf(webPort),
                        "-D", "execution.checkpointing.dir=" + work.resolve("checkpoints").toUri(),
                        "-D", "execution.checkpointing.savepoint-dir=" + work.resolve("savepoints").toUri());
                for (String role : List.of("jobmanager", "taskmanager")) {
                    pids.add(Long.parseLong(find(restarted, role + "\\s+pid (\\d+)")));
                }
                for (var job : upgraded.entrySet()) {
                    List<String> args = new ArrayList<>(List.of("resume", job.getKey(), "--jar", JAR.toString()));
                    args.addAll(stack.namespace().args());
                    args.addAll(List.of("--aggregation.emit-interval", "2s"));
                    String resumed = sluiceCluster(common, args.toArray(String[]::new));
                    System.out.println(resumed.lines().filter(l -> l.contains("resuming")).findFirst().orElse(resumed));
                    String from = find(resumed, "resuming " + job.getKey() + " from job " + job.getValue() + "'s newest retained checkpoint, chk-\\d+ \\(checkpoint \\d+ of \\S+\\): (\\S+)");
                    String id = jobIds(resumed).get(job.getKey());
                    String restored = Await.until("the resumed " + job.getKey() + " job to report its restore", Duration.ofMinutes(1),
                            () -> restoredFrom(rest, id), p -> !p.isEmpty());
                    assertThat(Path.of(URI.create(restored))).as("the resumed " + job.getKey() + " job restored from").isEqualTo(Path.of(from));
                }
                // the load has no count, so it lasts however long the upgrade and the JobManager's loss took: it ends once
                // records sent after the resumes are acknowledged, so the resumed jobs must take new input too
                long resumedAt = g.acked();
                Await.until("3,000 more records acknowledged after the resumes (" + resumedAt + " when they were done)",
                        Duration.ofMinutes(1), g::acked, n -> n >= resumedAt + 3_000 || g.failure() != null);
                oracle = g.stop().oracle(); // rethrows a produce failure
                System.out.printf("load: %,d records acknowledged, %,d of them after the resumes%n", g.acked(), g.acked() - resumedAt);

                Map<String, Map<String, String>> expectedSubscriptions = TestStack.expectedRows(oracle);
                assertThat(stack.awaitSubscriptionRows(expectedSubscriptions, 180_000)).as("subscription rows after the upgrade").isEqualTo(expectedSubscriptions);
                Map<String, Oracle.WindowRow> expectedWindows = oracle.windowCounts(MINUTE);
                Map<String, Oracle.WindowRow> actual = Await.until("window rows equal to the oracle's " + expectedWindows.size(),
                        Duration.ofMinutes(3), Duration.ofMillis(500), stack::windowRows, r -> r.size() == expectedWindows.size()
                        && r.entrySet().stream().allMatch(e -> expectedWindows.containsKey(e.getKey())
                        && expectedWindows.get(e.getKey()).count() == e.getValue().count()));
                TestStack.assertWindowRows(actual, expectedWindows, "an upgrade from savepoints");

                Map<String, String> expectedJobs = oracle.pushJobs(campaigns);
                assertThat(expectedJobs).hasSizeGreaterThan(50);
                List<PushJob> pushed = Await.until(expectedJobs.size() + " committed push jobs", Duration.ofMinutes(2), Duration.ofMillis(500),
                        stack::pushJobs, j -> j.size() >= expectedJobs.size());
                Map<String, Long> perId = pushed.stream().collect(Collectors.groupingBy(PushJob::jobId, Collectors.counting()));
                assertThat(perId.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList())
                        .as("push jobs emitted again after the upgrade").isEmpty();
                assertThat(perId.keySet()).isEqualTo(expectedJobs.keySet());
                subscriptions.assertNoRowMovedBackwards();
                windows.assertNoRowMovedBackwards();
            }
            String stopped = sluiceCluster(common, "stop");
            assertThat(stopped).contains("stopped in");
            for (long pid : pids) {
                assertThat(ProcessHandle.of(pid).filter(ProcessHandle::isAlive)).as("pid " + pid + " after stop").isEmpty();
            }
            assertThat(sluiceCluster(common, "status")).contains("not running");
        } finally {
            new ClusterCommand(System.out, classpath()).run(new String[] {"stop", "--work-dir", common[1], "--conf-dir", common[3]});
        }
    }

    /** The metrics an operator watches, read from the REST API of the running jobs, as the web UI and a dashboard read them. */
    private static void assertCustomMetrics(FlinkRest rest, Map<String, String> jobs) throws Exception {
        String subs = jobs.get("subscriptions");
        String agg = jobs.get("aggregation");
        for (int shard = 0; shard < 2; shard++) {
            String s = "shard." + shard + ".";
            awaitMetric(rest, subs, "upsert into shards", s + "rowsWritten", v -> v > 0);
            awaitMetric(rest, subs, "upsert into shards", s + "timeLagMs", v -> v > 0 && v < 60_000);
            awaitMetric(rest, subs, "upsert into shards", s + "lastBatchMillis", v -> v >= 0);
            awaitMetric(rest, agg, "upsert window counts", s + "rowsWritten", v -> v > 0);
        }
        awaitMetric(rest, subs, "coalesce per subscription", "coalescingRatio", v -> v >= 1.0);
        awaitMetric(rest, subs, "count dead letters", "reason.decode.deadLetters", v -> v > 0);
        awaitMetric(rest, agg, "count dead letters", "reason.decode.deadLetters", v -> v > 0);
        awaitMetric(rest, agg, "pace per campaign", "app." + RecordSequence.appId(1) + ".campaign.buyers.queueDepth", v -> v >= 0);
        awaitMetric(rest, subs, "Source: subscription-updates", "pendingRecords", v -> v >= 0);
        awaitMetric(rest, agg, "Source: user-events", "pendingRecords", v -> v >= 0);
    }

    private static void awaitMetric(FlinkRest rest, String job, String vertex, String metric, DoublePredicate ok) throws Exception {
        TestFlink.awaitMetric(rest, job, vertex, metric, "max", ok);
    }

    /** The path the job's state was restored from (REST checkpoint statistics), "" while the job is initializing. */
    /** The completed checkpoints Flink keeps of {@code job} in the cluster's checkpoint directory. */
    private static long retainedCheckpoints(Path work, String job) throws java.io.IOException {
        Path dir = work.resolve("checkpoints").resolve(job);
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        try (var chk = Files.list(dir)) {
            return chk.filter(d -> d.getFileName().toString().startsWith("chk-") && Files.isRegularFile(d.resolve("_metadata"))).count();
        }
    }

    private static String restoredFrom(FlinkRest rest, String job) throws InterruptedException {
        try {
            JsonNode stats = rest.get("/jobs/" + job + "/checkpoints");
            return stats.path("latest").path("restored").path("external_path").asText("");
        } catch (java.io.IOException initializing) {
            return "";
        }
    }

    private static String sluiceCluster(String[] common, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(1, List.of(common));
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        int code = new ClusterCommand(new PrintStream(buffer, true, StandardCharsets.UTF_8), classpath()).run(all.toArray(String[]::new));
        String out = buffer.toString(StandardCharsets.UTF_8);
        if (!args[0].equals("status")) {
            assertThat(code).as("./sluice cluster " + String.join(" ", args) + " printed:\n" + out).isZero();
        }
        return out;
    }

    private static Map<String, String> jobIds(String submitOutput) {
        Map<String, String> ids = new LinkedHashMap<>();
        Matcher m = Pattern.compile("job (\\S+)\\s+submitted in [\\d.]+ s: ([0-9a-f]{32})").matcher(submitOutput);
        while (m.find()) {
            ids.put(m.group(1), m.group(2));
        }
        return ids;
    }

    private static String find(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertThat(m.find()).as("'" + regex + "' in:\n" + text).isTrue();
        return m.group(1);
    }

    /** The cluster's classpath, as ./sluice cluster gets it: this module's runtime dependencies (written by the build). */
    static String classpath() throws Exception {
        return Path.of("target/classes").toAbsolutePath() + java.io.File.pathSeparator + Files.readString(Path.of("target/cluster-classpath.txt")).strip();
    }
}
