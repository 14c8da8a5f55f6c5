package io.sluice.local;

import io.sluice.testkit.LocalMachine;
import com.fasterxml.jackson.databind.JsonNode;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.Await;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What an operator sees when a shard is slow for longer than the sink may hold its rows: the subscription
 * job runs on the local stack's Flink under steady load, with {@code shards.max-pending-rows} at 200; a
 * transaction holds an exclusive lock on shard 0's {@code subscriptions}. Shard 1 goes on committing
 * until the sink holds 200 rows for shard 0, then the sink waits: the REST backpressure endpoint reports
 * HIGH on the source vertex that feeds it, shard 0 commits nothing, and the web UI, rendered by headless
 * Chromium, shows the job graph with the backpressured vertex. A screenshot is kept at
 * {@code target/webui-backpressure.png}. When the lock goes, shard 0 catches up.
 */
@ExtendWith(SluiceStackExtension.class)
class BackpressureITCase {
    static final Path SCREENSHOT = Path.of("target/webui-backpressure.png");

    @Test
    void aLockedShardBackpressuresTheSourceAndTheWebUiShowsTheJobGraph(TestStack base, @TempDir Path work) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.update-fraction", "1", "generator.apps", "50", "generator.campaigns", "0",
                "subscriptions.parallelism", "2", "shards.max-pending-rows", "200"));
        int webPort = LocalMachine.freePort();
        try (LocalFlink flink = LocalFlink.start(work, webPort, 4)) {
            StreamExecutionEnvironment env = flink.environment();
            new SubscriptionJob().build(env, stack.config());
            JobClient job = env.executeAsync("sluice-subscriptions");
            String jobId = job.getJobID().toString();
            FlinkRest rest = new FlinkRest(flink.restAddress());
            try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), 3_000, System.currentTimeMillis(), false).start()) {
                Await.until("both shards committing before the lock", Duration.ofMinutes(1),
                        () -> committed(stack, 0) > 0 && committed(stack, 1) > 0, ok -> ok);

                try (Connection lock = stack.shard(0)) {
                    lock.setAutoCommit(false);
                    try (Statement st = lock.createStatement()) {
                        st.execute("LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE");
                    }
                    long shard0AtLock = committed(stack, 0);
                    long shard1AtLock = committed(stack, 1);
                    long t0 = System.nanoTime();

                    String source = rest.vertexId(jobId, "Source: subscription-updates");
                    Await.until("backpressure level HIGH on the source vertex while shard 0 is locked", Duration.ofMinutes(1),
                            Duration.ofMillis(500), () -> backpressure(rest, jobId, source), "high"::equals);
                    long shard1Later = committed(stack, 1);
                    System.out.printf("shard 0 locked: backpressure HIGH after %d ms; shard 1 committed %,d records at the lock, %,d after%n",
                            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), shard1AtLock, shard1Later);
                    assertThat(committed(stack, 0)).as("records shard 0 committed while locked").isEqualTo(shard0AtLock);
                    assertThat(shard1Later).as("shard 1 commits while the sink holds fewer than 200 rows for shard 0").isGreaterThan(shard1AtLock);

                    // the web UI shows the job graph with the backpressured source (its metrics reach the UI every few seconds)
                    String dom = Await.until("'Backpressured (max)' >= 50% on the job graph in the web UI", Duration.ofSeconds(90),
                            Duration.ofSeconds(1), () -> chromium("--dump-dom", jobUrl(webPort, jobId)), d -> maxBackpressuredPercent(d) >= 50);
                    assertThat(dom).contains("sluice-subscriptions").contains("Source: subscription-updates").contains("upsert into shards");
                    assertThat(maxBackpressuredPercent(dom)).as("'Backpressured (max)' on the job graph").isGreaterThanOrEqualTo(50);
                    Files.deleteIfExists(SCREENSHOT);
                    chromium("--screenshot=" + SCREENSHOT.toAbsolutePath(), jobUrl(webPort, jobId));
                    assertThat(SCREENSHOT).as("screenshot of the web UI").exists();
                    assertThat(Files.size(SCREENSHOT)).as("screenshot bytes").isGreaterThan(20_000);
                    System.out.println("web UI screenshot: " + SCREENSHOT.toAbsolutePath());
                    lock.rollback();
                }
                long released = committed(stack, 0);
                Await.until("shard 0 to catch up after the lock", Duration.ofMinutes(1), () -> committed(stack, 0), c -> c > released);
            } finally {
                job.cancel().get(60, TimeUnit.SECONDS);
            }
        }
    }

    /** The subscription job's committed count on a shard ({@code sluice_partition_progress}, written in the same transaction as the rows). */
    private static long committed(TestStack stack, int shard) throws Exception {
        try (Connection c = stack.shard(shard); Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT coalesce(sum(records), 0) FROM sluice_partition_progress WHERE job = '" + SubscriptionJob.NAME + "'")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** The REST backpressure level of a vertex (ok, low, high); the first answers may be "deprecated" while sampling starts (docs/stack.md). */
    private static String backpressure(FlinkRest rest, String job, String vertex) throws Exception {
        JsonNode bp = rest.get("/jobs/" + job + "/vertices/" + vertex + "/backpressure");
        return "ok".equals(bp.path("status").asText()) ? bp.path("backpressure-level").asText() : bp.path("status").asText();
    }

    private static String jobUrl(int webPort, String jobId) {
        return "http://localhost:" + webPort + "/#/job/running/" + jobId + "/overview";
    }

    private static int maxBackpressuredPercent(String dom) {
        Matcher m = Pattern.compile("Backpressured \\(max\\): (\\d+)%").matcher(dom);
        int max = -1;
        while (m.find()) {
            max = Math.max(max, Integer.parseInt(m.group(1)));
        }
        return max;
    }

    /**
     * Runs Debian's headless Chromium (installed by {@code .ci/run}, or {@code bash .ci/install-chromium}) on a page, with the flags this
     * machine's closed network needs, and 6 s of virtual time for the Angular app to fetch and render;
     * returns what it printed.
     */
    static String chromium(String action, String url) throws Exception {
        File binary = new File("/usr/bin/chromium");
        if (!binary.canExecute()) { // tests install nothing; .ci/run does, and so does this one command
            throw new AssertionError("/usr/bin/chromium is missing: this test renders Flink's web UI with Debian's headless Chromium."
                    + " Install it once with: bash .ci/install-chromium (needs root or sudo)");
        }
        // headless chromium now and then never exits (seen with --screenshot and with --dump-dom): each attempt
        // has its own deadline and its process tree is killed when it passes, then it is tried again
        for (int attempt = 1; ; attempt++) {
            Path profile = Files.createTempDirectory("sluice-chromium");
            Path out = Files.createTempFile("sluice-chromium", ".out");
            List<String> cmd = new ArrayList<>(List.of(binary.getPath(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--window-size=1600,1000", "--virtual-time-budget=6000", action, url));
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).redirectOutput(out.toFile()).start();
            boolean exited = p.waitFor(30, TimeUnit.SECONDS); // a good run takes a few seconds
            if (!exited) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            String output = Files.readString(out, StandardCharsets.UTF_8);
            Files.delete(out);
            LocalMachine.deleteRecursively(profile);
            if (exited) {
                return output;
            }
            System.out.printf("chromium did not finish within 30 s (attempt %d of 3): %s%n", attempt, cmd);
            if (attempt == 3) {
                throw new AssertionError("chromium did not finish within 30 s, 3 times: " + cmd);
            }
        }
    }
}
