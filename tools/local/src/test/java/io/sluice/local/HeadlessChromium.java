package io.sluice.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sluice.testkit.Await;
import io.sluice.testkit.LocalMachine;

import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Debian's headless Chromium (installed by {@code .ci/run}, or {@code bash .ci/install-packages}) with the flags this machine's
 * closed network needs. {@link #open} keeps a page open and drives it over the DevTools protocol, for what a user does by
 * hand: watch the job graph, pick a metric in Flink's web UI and watch its value. (One-shot {@code --dump-dom} and
 * {@code --screenshot} runs were dropped: now and then such a process never exited, three times in a row in one CI run.)
 */
final class HeadlessChromium implements AutoCloseable {
    private static final File BINARY = new File("/usr/bin/chromium");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final Path profile;
    private final WebSocket socket;
    private final AtomicInteger ids = new AtomicInteger();
    private final Map<Integer, CompletableFuture<JsonNode>> replies = new ConcurrentHashMap<>();

    private HeadlessChromium(Process process, Path profile, WebSocket socket) {
        this.process = process;
        this.profile = profile;
        this.socket = socket;
    }

    private static void requireBinary() {
        if (!BINARY.canExecute()) { // tests install nothing; .ci/run does, and so does this one command
            throw new AssertionError("/usr/bin/chromium is missing: this test renders Flink's web UI with Debian's headless Chromium."
                    + " Install it once with: bash .ci/install-packages (needs root or sudo)");
        }
    }

    private static List<String> command(Path profile, String... args) {
        List<String> cmd = new ArrayList<>(List.of(BINARY.getPath(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--window-size=1600,1000"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Starts Chromium on {@code url} and connects to the page over the DevTools protocol; a start that fails is tried again, 3 times in all. */
    static HeadlessChromium open(String url) throws Exception {
        requireBinary(); // a missing program is not worth a second try
        for (int attempt = 1; ; attempt++) {
            try {
                return openOnce(url);
            } catch (InterruptedException e) {
                throw e;
            } catch (Exception | AssertionError e) {
                if (attempt == 3) {
                    throw e;
                }
                System.out.printf("chromium did not start on %s (attempt %d of 3): %s%n", url, attempt, e);
            }
        }
    }

    private static HeadlessChromium openOnce(String url) throws Exception {
        Path profile = Files.createTempDirectory("sluice-chromium");
        Process p;
        try {
            p = new ProcessBuilder(command(profile, "--remote-debugging-port=0", "--remote-allow-origins=*", url))
                    .redirectError(ProcessBuilder.Redirect.DISCARD).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        } catch (java.io.IOException | RuntimeException e) {
            LocalMachine.deleteRecursively(profile);
            throw e;
        }
        try {
            Path portFile = profile.resolve("DevToolsActivePort"); // Chromium writes the port it chose here
            List<String> written = Await.until("chromium to write its DevTools port to " + portFile, Duration.ofSeconds(30), Duration.ofMillis(100), () -> {
                if (!p.isAlive()) {
                    throw new AssertionError("chromium exited with " + p.exitValue() + " before it opened its DevTools port");
                }
                return Files.exists(portFile) ? Files.readAllLines(portFile) : List.<String>of();
            }, lines -> !lines.isEmpty());
            int port = Integer.parseInt(written.get(0).trim());
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            String targets = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list")).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            String pageSocket = null;
            for (JsonNode t : JSON.readTree(targets)) {
                if ("page".equals(t.path("type").asText())) {
                    pageSocket = t.path("webSocketDebuggerUrl").asText();
                }
            }
            if (pageSocket == null) {
                throw new AssertionError("chromium lists no page target: " + targets);
            }
            Listener listener = new Listener();
            WebSocket socket = http.newWebSocketBuilder().buildAsync(URI.create(pageSocket), listener).get(10, TimeUnit.SECONDS);
            HeadlessChromium chromium = new HeadlessChromium(p, profile, socket);
            listener.owner = chromium;
            return chromium;
        } catch (Exception | AssertionError e) {
            destroy(p);
            LocalMachine.deleteRecursively(profile);
            throw e;
        }
    }

    /**
     * Evaluates a JavaScript expression in the page (awaiting a promise) and returns its value as JSON (null for undefined).
     * A page that throws (as one does while it reloads) or a call Chromium refuses is an {@link IllegalStateException}, so
     * {@code Await.until} reads again.
     */
    JsonNode evaluate(String expression) throws Exception {
        ObjectNode params = JSON.createObjectNode().put("expression", expression).put("returnByValue", true).put("awaitPromise", true);
        JsonNode reply = call("Runtime.evaluate", params);
        if (reply.has("exceptionDetails")) {
            throw new IllegalStateException("the page threw on " + expression + ": " + reply.path("exceptionDetails"));
        }
        return reply.path("result").path("value");
    }

    /** Saves a PNG of the page as it is now. */
    void screenshot(Path file) throws Exception {
        JsonNode reply = call("Page.captureScreenshot", JSON.createObjectNode().put("format", "png"));
        Files.write(file, Base64.getDecoder().decode(reply.path("data").asText()));
    }

    private JsonNode call(String method, ObjectNode params) throws Exception {
        int id = ids.incrementAndGet();
        CompletableFuture<JsonNode> reply = new CompletableFuture<>();
        replies.put(id, reply);
        socket.sendText(JSON.createObjectNode().put("id", id).put("method", method).set("params", params).toString(), true).get(10, TimeUnit.SECONDS);
        JsonNode answer;
        try {
            answer = reply.get(30, TimeUnit.SECONDS);
        } finally {
            replies.remove(id);
        }
        if (answer.has("error")) {
            throw new IllegalStateException("chromium refused " + method + ": " + answer.path("error"));
        }
        return answer.path("result");
    }

    @Override
    public void close() throws Exception {
        try {
            socket.abort();
        } finally {
            destroy(process);
            LocalMachine.deleteRecursively(profile);
        }
    }

    private static void destroy(Process p) throws InterruptedException {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    /** Collects each message's fragments and completes the call it answers; events (no id) are ignored. */
    private static final class Listener implements WebSocket.Listener {
        private final StringBuilder text = new StringBuilder();
        private volatile HeadlessChromium owner;

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            text.append(data);
            if (last) {
                try {
                    JsonNode message = JSON.readTree(text.toString());
                    CompletableFuture<JsonNode> reply = message.has("id") && owner != null ? owner.replies.remove(message.get("id").asInt()) : null;
                    if (reply != null) {
                        reply.complete(message);
                    }
                } catch (Exception e) {
                    throw new IllegalStateException("an unreadable DevTools message", e);
                } finally {
                    text.setLength(0);
                }
            }
            ws.request(1);
            return null;
        }
    }
}
