package io.sluice.testkit;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * What the local stack, its commands and tests need of this machine: a free TCP port, a directory tree removed, and a
 * look into a Flink process's class loaders, a short command run for its output.
 */
public final class LocalMachine {
    private LocalMachine() {
    }

    /** A port nothing listens on right now (the OS picks it). */
    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    /** Removes {@code p} and everything under it; nothing if it does not exist. */
    public static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> files = Files.walk(p)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }

    /**
     * The job class loaders a Flink process on this machine still holds after a full GC, by {@code jcmd} of the JDK
     * running this JVM: one per job with a task there, plus any a leak keeps (a thread, a JDBC driver registration...).
     */
    public static int jobClassLoaders(long pid) throws IOException, InterruptedException {
        jcmd(pid, "GC.run");
        return (int) jcmd(pid, "VM.classloader_stats").lines().filter(l -> l.contains("org.apache.flink.util.ChildFirstClassLoader")
                || l.contains("org.apache.flink.util.FlinkUserCodeClassLoaders$ParentFirstClassLoader")).count();
    }

    private static String jcmd(long pid, String command) throws IOException, InterruptedException {
        return run(List.of(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(), String.valueOf(pid), command));
    }

    /** Runs {@code cmd} to its end (at most 60 s) and returns what it printed; fails with that output if it fails. */
    public static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }
}
