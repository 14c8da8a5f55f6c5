package io.sluice.testkit;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis server (Debian's {@code redis-server}, which {@code .ci/run} installs) in its own process, on loopback, with
 * {@code appendonly yes} and {@code appendfsync always}: a write Redis answered is on disk. It keeps its port and data
 * directory for its lifetime, so {@link #kill()} (SIGKILL) and {@link #start()} model a crash and a restart that replays
 * the append-only file.
 */
public final class RedisServer implements AutoCloseable {
    public static final String BINARY = "/usr/bin/redis-server";

    private final Path dir;
    private final int port;
    private Process process;

    private RedisServer(Path dir, int port) {
        this.dir = dir;
        this.port = port;
    }

    /** Starts a server with a fresh data directory; fails naming the package when Redis is not installed. */
    public static RedisServer start(Path dir) throws Exception {
        if (!Files.isExecutable(Path.of(BINARY))) {
            throw new AssertionError(BINARY + " is missing: install Debian's redis-server (apt-get install redis-server; .ci/run does)");
        }
        Files.createDirectories(dir);
        RedisServer r = new RedisServer(dir, LocalMachine.freePort());
        r.start();
        return r;
    }

    public int port() {
        return port;
    }

    public String url() {
        return "redis://127.0.0.1:" + port + "/0";
    }

    /** Starts (again) on the same port and directory, and waits until it answers PING. */
    public void start() throws Exception {
        process = new ProcessBuilder(List.of(BINARY, "--port", String.valueOf(port), "--bind", "127.0.0.1", "--dir", dir.toString(),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", dir.resolve("redis.log").toString()))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("redis.out").toFile())).start();
        Await.until("redis-server on port " + port + " to answer PING", Duration.ofSeconds(30), Duration.ofMillis(50),
                () -> {
                    if (!process.isAlive()) {
                        throw new AssertionError("redis-server exited with " + process.exitValue() + "; see " + dir.resolve("redis.log"));
                    }
                    try {
                        return command("PING");
                    } catch (IOException e) {
                        return e.toString();
                    }
                }, "+PONG"::equals);
    }

    /** SIGKILL: no shutdown, no final write; what it answered before is in the append-only file. */
    public void kill() throws InterruptedException {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    /** One inline command (arguments without spaces) and the first line of its reply, e.g. {@code :42} for {@code LLEN queue:default}. */
    public String command(String inline) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
            s.setSoTimeout(5_000);
            OutputStream out = s.getOutputStream();
            out.write((inline + "\r\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            String line = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8)).readLine();
            if (line == null) {
                throw new IOException("redis-server closed the connection without a reply to " + inline);
            }
            return line;
        }
    }

    /** An integer reply, e.g. {@code LLEN queue:default}. */
    public long integer(String inline) throws IOException {
        String r = command(inline);
        if (!r.startsWith(":")) {
            throw new IOException("redis-server answered " + r + " to " + inline);
        }
        return Long.parseLong(r.substring(1));
    }

    @Override
    public void close() throws Exception {
        if (process != null) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        LocalMachine.deleteRecursively(dir);
    }
}
