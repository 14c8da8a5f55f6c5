package io.sluice.local;

import io.sluice.testkit.Await;
import io.sluice.testkit.Faults;
import io.sluice.testkit.LocalMachine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/** The local command as a newcomer runs it, twice in a row: web UI up, progress lines, a summary, and nothing left running. */
class LocalCommandITCase {

    @Test
    void runsForItsDurationAndLeavesNothingBehindTwice(@TempDir Path work) throws Exception {
        for (int run = 1; run <= 2; run++) {
            int webPort = LocalMachine.freePort();
            ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            PrintStream out = new PrintStream(buffer, true, StandardCharsets.UTF_8);
            String[] args = {"--duration", "12", "--rate", "500", "--web-port", String.valueOf(webPort),
                    "--local.progress-interval", "2s", "--local.work-dir", work.resolve("run" + run).toString()};
            CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> {
                try {
                    return new LocalCommand(out).run(args);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });

            // The web UI answers as soon as the JobManager is up; the TaskManager registers a moment later.
            String overview = null;
            long deadline = System.currentTimeMillis() + 60_000;
            while ((overview == null || !overview.contains("\"taskmanagers\":1"))
                    && System.currentTimeMillis() < deadline && !exit.isDone()) {
                try {
                    HttpResponse<String> r = HttpClient.newHttpClient().send(
                            HttpRequest.newBuilder(URI.create("http://localhost:" + webPort + "/overview")).build(), HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() == 200) {
                        overview = r.body();
                    }
                } catch (java.io.IOException notYet) {
                    // not listening yet
                }
                Thread.sleep(250);
            }
            assertThat(exit.get()).isZero();
            String printed = buffer.toString(StandardCharsets.UTF_8);
            System.out.println(printed);
            assertThat(overview).as("GET /overview of the web UI during run " + run).contains("\"taskmanagers\":1");

            assertThat(printed).contains("Flink web UI     http://").contains("Kafka bootstrap").contains("Schema registry")
                    .contains("Postgres shard 0 jdbc:postgresql://").contains("Postgres shard 1 jdbc:postgresql://");
            Matcher progress = Pattern.compile("\\[\\s*\\d+s] produced ([\\d,]+)/s").matcher(printed);
            int lines = 0;
            double lastRate = 0;
            while (progress.find()) {
                lines++;
                lastRate = Double.parseDouble(progress.group(1).replace(",", ""));
            }
            assertThat(lines).as("progress lines").isGreaterThanOrEqualTo(4);
            assertThat(lastRate).isBetween(450.0, 550.0);
            Matcher summary = Pattern.compile("produced\\s+([\\d,]+) records").matcher(printed);
            assertThat(summary.find()).as("summary line").isTrue();
            assertThat(Long.parseLong(summary.group(1).replace(",", ""))).isBetween(5_000L, 7_000L);
            assertThat(printed).contains("sluice local: stopped");

            // nothing left: no postgres child processes, the web port is free again
            List<String> children = ProcessHandle.current().descendants()
                    .map(p -> p.info().command().orElse("?")).filter(c -> c.contains("postgres")).toList();
            assertThat(children).as("postgres processes left after run " + run).isEmpty();
            try (ServerSocket s = new ServerSocket(webPort)) {
                assertThat(s.getLocalPort()).isEqualTo(webPort);
            }
            Matcher pg = Pattern.compile("Postgres shard \\d jdbc:postgresql://127.0.0.1:(\\d+)/").matcher(printed);
            while (pg.find()) {
                try (ServerSocket s = new ServerSocket(Integer.parseInt(pg.group(1)))) {
                    assertThat(s.isBound()).isTrue();
                }
            }
        }
    }

    /**
     * Shard 0's processes all stopped (SIGSTOP) for 30 s during a run, as a hung database server: the command keeps
     * printing progress lines, they name the shard, the rows the jobs hold for it and how long it has not answered, and
     * the run ends normally. It used to exit within 17 s on its probe's read timeout, taking the broker, Flink and the
     * other shard with it.
     */
    @Test
    void keepsRunningAndNamesAShardThatHangs(@TempDir Path work) throws Exception {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(buffer, true, StandardCharsets.UTF_8);
        String[] args = {"--duration", "50", "--rate", "300", "--web-port", String.valueOf(LocalMachine.freePort()),
                "--local.progress-interval", "2s", "--local.work-dir", work.toString()};
        CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> {
            try {
                return new LocalCommand(out).run(args);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        Pattern shard0 = Pattern.compile("Postgres shard 0 jdbc:postgresql://127.0.0.1:(\\d+)/");
        String started = Await.until("the first progress line", Duration.ofSeconds(90), Duration.ofMillis(200),
                () -> buffer.toString(StandardCharsets.UTF_8), t -> t.contains("] produced") || exit.isDone());
        assertThat(exit).as("the command still running").isNotDone();
        Matcher port = shard0.matcher(started);
        assertThat(port.find()).as("shard 0's address printed").isTrue();
        List<ProcessHandle> processes = Faults.postgresProcesses(Integer.parseInt(port.group(1)));
        long stoppedAt = System.currentTimeMillis();
        int linesBefore = progressLines(buffer);
        Faults.signal("STOP", processes);
        try {
            Await.until("a progress line naming shard 0 as behind and not answering", Duration.ofSeconds(25), Duration.ofMillis(200),
                    () -> buffer.toString(StandardCharsets.UTF_8), t -> t.contains(", not answering for") || exit.isDone());
            while (System.currentTimeMillis() - stoppedAt < 30_000 && !exit.isDone()) {
                Thread.sleep(200); // the outage lasts 30 s
            }
        } finally {
            Faults.signal("CONT", processes);
        }
        int linesDuring = progressLines(buffer) - linesBefore;
        assertThat(exit.get(2, java.util.concurrent.TimeUnit.MINUTES)).as("exit code").isZero();
        String printed = buffer.toString(StandardCharsets.UTF_8);
        System.out.println(printed);
        assertThat(linesDuring).as("progress lines while shard 0 was stopped for 30 s (one every 2 s)").isGreaterThanOrEqualTo(8);
        assertThat(printed).containsPattern("\\| shard 0 behind: [\\d,]+ rows pending, nothing committed for \\d+ s, not answering for [12]\\d s");
        assertThat(printed).as("a line with the rows the jobs hold for shard 0").containsPattern("\\| shard 0 behind: [1-9][\\d,]* rows pending");
        String last = printed.substring(printed.lastIndexOf("] produced"));
        assertThat(last.substring(0, last.indexOf('\n'))).as("the last progress line, 20 s after the shard came back").doesNotContain("shard 0 behind");
        assertThat(printed).contains("sluice local: summary").contains("sluice local: stopped");
    }

    private static int progressLines(ByteArrayOutputStream buffer) {
        Matcher m = Pattern.compile("\\[\\s*\\d+s] produced").matcher(buffer.toString(StandardCharsets.UTF_8));
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }
}
