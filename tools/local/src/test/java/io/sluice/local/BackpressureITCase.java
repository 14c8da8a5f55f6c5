package io.sluice.local;

import io.sluice.testkit.LocalMachine;
import com.fasterxml.jackson.databind.JsonNode;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.Await;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.Faults;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestStack;
import io.sluice.testkit.generator.Oracle;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

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
 * What an operator sees when one shard stops taking writes: the subscription job runs on the local stack's Flink (with
 * its web UI) under steady load, and a transaction holds an exclusive lock on shard 0's {@code subscriptions}.
 * <ul>
 * <li>With {@code shards.max-pending-rows} at 200, shard 1 goes on committing until the sink holds 200 rows for shard 0;
 *     then the sink waits: the REST backpressure endpoint reports HIGH on the source vertex, and the web UI, rendered by
 *     headless Chromium, shows it on the job graph ({@code target/webui-backpressure.png}). When the lock goes, shard 0
 *     catches up and every row equals the generator's oracle: nothing the sink held while it waited is lost.</li>
 * <li>With the default bound, the sink holds shard 0's rows instead: a user who adds the metric
 *     {@code shard.0.pendingRows} on the sink's Metrics tab in the web UI watches it rise while shard 1 keeps
 *     committing ({@code target/webui-pending-rows.png}).</li>
 * </ul>
 */
@ExtendWith(SluiceStackExtension.class)
class BackpressureITCase {
    static final Path SCREENSHOT = Path.of("target/webui-backpressure.png");
    static final Path PENDING_SCREENSHOT = Path.of("target/webui-pending-rows.png");
    static final int RATE = 3_000;

    @Test
    void aSmallPendingBoundBackpressuresTheSourceTheWebUiShowsItAndNothingIsLost(TestStack base, @TempDir Path work) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.update-fraction", "1", "generator.apps", "50", "generator.campaigns", "0",
                "generator.count", String.valueOf(RATE * 40), "subscriptions.parallelism", "2", "shards.max-pending-rows", "200"));
        int webPort = LocalMachine.freePort();
        try (LocalFlink flink = LocalFlink.start(work, webPort, 4)) {
            JobClient job = submit(flink, stack);
            String jobId = job.getJobID().toString();
            FlinkRest rest = new FlinkRest(flink.restAddress());
            Oracle oracle;
            try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), RATE, System.currentTimeMillis(), true).start()) {
                awaitBothShardsCommitting(stack);
                try (Connection lock = lock(stack)) {
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

                    // the web UI shows the job graph with the backpressured source (its metrics reach the UI every few seconds);
                    // one page stays open, as a user's would, and is reloaded every 15 s in case its polling stalled
                    try (HeadlessChromium chromium = HeadlessChromium.open(jobUrl(webPort, jobId))) {
                        int[] polls = {0};
                        String dom = Await.until("'Backpressured (max)' >= 50% on the job graph in the web UI", Duration.ofSeconds(90),
                                Duration.ofSeconds(1), () -> {
                                    if (++polls[0] % 15 == 0) {
                                        chromium.evaluate("location.reload()");
                                    }
                                    return chromium.evaluate("document.documentElement.outerHTML").asText();
                                }, d -> maxBackpressuredPercent(d) >= 50);
                        assertThat(dom).contains("sluice-subscriptions").contains("Source: subscription-updates").contains("upsert into shards");
                        assertThat(maxBackpressuredPercent(dom)).as("'Backpressured (max)' on the job graph").isGreaterThanOrEqualTo(50);
                        Files.deleteIfExists(SCREENSHOT);
                        chromium.screenshot(SCREENSHOT);
                        assertScreenshot(SCREENSHOT);
                    }
                    lock.rollback();
                }
                oracle = g.awaitDone().oracle();
            }
            // every update the sink held back or buffered while it waited reaches the shards once the lock goes
            TestStack.assertSubscriptionRows(stack.awaitSubscriptionRows(TestStack.expectedRows(oracle), 120_000), TestStack.expectedRows(oracle),
                    "shard 0 was locked with shards.max-pending-rows 200");
            job.cancel().get(60, TimeUnit.SECONDS);
        }
    }

    @Test
    void withTheDefaultBoundTheLockedShardsPendingRowsRiseInTheWebUiWhileTheOtherShardCommits(TestStack base, @TempDir Path work) throws Exception {
        TestStack stack = base.fresh(Map.of("generator.update-fraction", "1", "generator.apps", "50", "generator.campaigns", "0",
                "subscriptions.parallelism", "2"));
        assertThat(stack.config().shards().maxPendingRows()).as("the default shards.max-pending-rows").isEqualTo(250_000);
        int webPort = LocalMachine.freePort();
        try (LocalFlink flink = LocalFlink.start(work, webPort, 4)) {
            JobClient job = submit(flink, stack);
            String jobId = job.getJobID().toString();
            FlinkRest rest = new FlinkRest(flink.restAddress());
            try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), RATE, System.currentTimeMillis(), false).start()) {
                awaitBothShardsCommitting(stack);
                String sink = rest.vertexId(jobId, "upsert into shards");
                String metric = Await.until("the sink's shard.0.pendingRows metric of subtask 0 listed by the REST API", Duration.ofMinutes(1),
                        () -> metricIds(rest, jobId, sink).stream().filter(id -> id.startsWith("0.") && id.endsWith(".shard.0.pendingRows")).findFirst(),
                        java.util.Optional::isPresent).get();
                try (Connection lock = lock(stack);
                     HeadlessChromium chromium = HeadlessChromium.open("http://localhost:" + webPort + "/#/job/running/" + jobId + "/overview/" + sink + "/metrics")) {
                    long shard0AtLock = committed(stack, 0);
                    // what a user does: Add Metric, type its name, pick it, switch the chart to Numeric
                    Await.until("the metric picker on the sink's Metrics tab", Duration.ofSeconds(60), Duration.ofMillis(500),
                            () -> chromium.evaluate("!!document.querySelector('flink-job-overview-drawer-chart nz-select')").asBoolean(), ok -> ok);
                    chromium.evaluate("document.querySelector('flink-job-overview-drawer-chart nz-select').click()");
                    chromium.evaluate("(() => { const i = document.querySelector('flink-job-overview-drawer-chart nz-select input');"
                            + " i.value = " + jsString(metric) + "; i.dispatchEvent(new Event('input', {bubbles: true})); })()");
                    Await.until(metric + " offered by the metric picker", Duration.ofSeconds(30), Duration.ofMillis(300),
                            () -> chromium.evaluate("(() => { const o = [...document.querySelectorAll('nz-option-item')].find(e => e.textContent.trim() === "
                                    + jsString(metric) + "); if (o) { o.click(); } return !!o; })()").asBoolean(), ok -> ok);
                    Await.until("a chart titled " + metric, Duration.ofSeconds(30), Duration.ofMillis(300),
                            () -> chromium.evaluate("(() => { const c = [...document.querySelectorAll('flink-job-chart')].find(e => e.querySelector('.title .text')"
                                    + ".textContent.trim() === " + jsString(metric) + "); if (c) { [...c.querySelectorAll('button')].find(b => b.textContent.trim()"
                                    + " === 'Numeric').click(); } return !!c; })()").asBoolean(), ok -> ok);
                    // the web UI refreshes every few seconds: read the shown value until it has risen twice
                    List<Long> shown = new ArrayList<>();
                    long[] shard1AtFirst = {-1};
                    Await.until("the web UI showing " + metric + " rising 2 times", Duration.ofSeconds(90), Duration.ofMillis(500), () -> {
                        String text = chromium.evaluate("[...document.querySelectorAll('flink-job-chart')].find(e => e.querySelector('.title .text')"
                                + ".textContent.trim() === " + jsString(metric) + ").querySelector('.numeric').textContent.trim()").asText();
                        long value = text.matches("[0-9,]+") ? Long.parseLong(text.replace(",", "")) : -1;
                        if (value > 0 && (shown.isEmpty() || value > shown.get(shown.size() - 1))) {
                            shown.add(value);
                            if (shard1AtFirst[0] < 0) {
                                shard1AtFirst[0] = committed(stack, 1);
                            }
                        }
                        return shown;
                    }, values -> values.size() >= 3);
                    long shard1AtLast = committed(stack, 1);
                    Files.deleteIfExists(PENDING_SCREENSHOT);
                    chromium.screenshot(PENDING_SCREENSHOT.toAbsolutePath());
                    System.out.printf("shard 0 locked: the web UI showed %s rising %s; shard 1 committed %,d records meanwhile%n",
                            metric, shown, shard1AtLast - shard1AtFirst[0]);
                    assertThat(shard1AtLast).as("shard 1's committed records while the web UI showed shard 0's pending rows rising").isGreaterThan(shard1AtFirst[0]);
                    assertThat(committed(stack, 0)).as("records shard 0 committed while locked").isEqualTo(shard0AtLock);
                    assertThat(backpressure(rest, jobId, rest.vertexId(jobId, "Source: subscription-updates")))
                            .as("the source's backpressure while the sink holds shard 0's rows below the bound").isNotEqualTo("high");
                    assertScreenshot(PENDING_SCREENSHOT);
                    lock.rollback();
                }
                long released = committed(stack, 0);
                Await.until("shard 0 to catch up after the lock", Duration.ofMinutes(1), () -> committed(stack, 0), c -> c > released);
            } finally {
                job.cancel().get(60, TimeUnit.SECONDS);
            }
        }
    }

    private static JobClient submit(LocalFlink flink, TestStack stack) throws Exception {
        StreamExecutionEnvironment env = flink.environment();
        new SubscriptionJob().build(env, stack.config());
        return env.executeAsync("sluice-subscriptions");
    }

    private static void awaitBothShardsCommitting(TestStack stack) throws Exception {
        Await.until("both shards committing before the lock", Duration.ofMinutes(1), () -> committed(stack, 0) > 0 && committed(stack, 1) > 0, ok -> ok);
    }

    /**
     * A transaction holding an exclusive lock on shard 0's {@code subscriptions} until it is rolled back or closed, however
     * long the waits for the web UI take on a slow machine ({@link Faults#lockSession}).
     */
    private static Connection lock(TestStack stack) throws Exception {
        Connection lock = Faults.lockSession(stack.shard(0));
        try (Statement st = lock.createStatement()) {
            st.execute("LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE");
        }
        return lock;
    }

    private static List<String> metricIds(FlinkRest rest, String job, String vertex) throws Exception {
        List<String> ids = new ArrayList<>();
        rest.get("/jobs/" + job + "/vertices/" + vertex + "/metrics").forEach(m -> ids.add(m.path("id").asText()));
        return ids;
    }

    private static String jsString(String s) {
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    private static void assertScreenshot(Path file) throws Exception {
        assertThat(file).as("screenshot of the web UI").exists();
        assertThat(Files.size(file)).as("screenshot bytes").isGreaterThan(20_000);
        System.out.println("web UI screenshot: " + file.toAbsolutePath());
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
}
