package io.sluice.local;

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
}
