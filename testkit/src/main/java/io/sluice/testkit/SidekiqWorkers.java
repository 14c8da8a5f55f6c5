package io.sluice.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Sidekiq process (Debian's {@code ruby-sidekiq}, which {@code .ci/run} installs) running the workers of
 * {@code sidekiq/worker.rb} against a {@link RedisServer}: each job it runs is a JSON line (class, jid, args) in
 * {@link #processed()}. {@link #pause()} and {@link #resume()} stop and continue the process (SIGSTOP, SIGCONT), as a
 * Sidekiq fleet that stopped taking jobs.
 */
public final class SidekiqWorkers implements AutoCloseable {
    public static final String BINARY = "/usr/bin/sidekiq";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final Path log;

    private SidekiqWorkers(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /** Starts Sidekiq with {@code concurrency} threads on {@code queues}; fails naming the package when it is not installed. */
    public static SidekiqWorkers start(RedisServer redis, Path dir, int concurrency, String... queues) throws Exception {
        if (!Files.isExecutable(Path.of(BINARY))) {
            throw new AssertionError(BINARY + " is missing: install Debian's ruby-sidekiq (apt-get install ruby-sidekiq; .ci/run does)");
        }
        Files.createDirectories(dir);
        Path worker = dir.resolve("worker.rb");
        try (InputStream in = SidekiqWorkers.class.getResourceAsStream("/sidekiq/worker.rb")) {
            Files.write(worker, in.readAllBytes());
        }
        Path log = dir.resolve("jids.log");
        Files.deleteIfExists(log);
        Files.createFile(log);
        List<String> cmd = new ArrayList<>(List.of(BINARY, "-r", worker.toString(), "-c", String.valueOf(concurrency), "-t", "1"));
        for (String q : queues) {
            cmd.add("-q");
            cmd.add(q);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("sidekiq.log").toFile()));
        pb.environment().put("REDIS_URL", redis.url());
        pb.environment().put("SLUICE_JID_LOG", log.toString());
        return new SidekiqWorkers(pb.start(), log);
    }

    /** Every job run so far: one JSON object (class, jid, args) per job, in the order they finished. */
    public List<JsonNode> processed() throws IOException {
        if (!process.isAlive()) {
            throw new AssertionError("sidekiq exited with " + process.exitValue() + "; see " + log.resolveSibling("sidekiq.log"));
        }
        List<JsonNode> jobs = new ArrayList<>();
        for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
            if (line.endsWith("}")) { // a line being written is not complete yet
                jobs.add(JSON.readTree(line));
            }
        }
        return jobs;
    }

    public void pause() throws Exception {
        Faults.signal("STOP", List.of(process.toHandle()));
    }

    public void resume() throws Exception {
        Faults.signal("CONT", List.of(process.toHandle()));
    }

    @Override
    public void close() throws Exception {
        if (process.isAlive()) {
            Faults.signal("CONT", List.of(process.toHandle()));
        }
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }
}
