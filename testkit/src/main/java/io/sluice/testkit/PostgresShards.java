package io.sluice.testkit;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * N real Postgres servers, one process each (the shards), started from the binaries in zonky's
 * Maven artifact. Each keeps its data directory and port for its lifetime, so {@link #stop(int)} and
 * {@link #restart(int)} model a shard going down and coming back. {@code max_prepared_transactions}
 * is 0: Sluice never needs XA. Superuser {@code postgres}, trust authentication on loopback.
 */
public final class PostgresShards implements AutoCloseable {
    public static final String USER = "postgres";

    private final Path root;
    private final List<Shard> shards = new ArrayList<>();

    private PostgresShards(Path root) {
        this.root = root;
    }

    /** Starts {@code count} servers in parallel under a fresh temporary directory. */
    public static PostgresShards start(int count) throws Exception {
        PostgresShards all = new PostgresShards(Files.createTempDirectory("sluice-pg-"));
        try {
            List<Thread> starters = new ArrayList<>();
            List<Exception> failures = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                Shard s = new Shard(i, all.root.resolve("shard-" + i), LocalMachine.freePort());
                all.shards.add(s);
                Thread t = new Thread(() -> {
                    try {
                        s.start();
                    } catch (Exception e) {
                        synchronized (failures) {
                            failures.add(e);
                        }
                    }
                }, "pg-start-" + i);
                t.start();
                starters.add(t);
            }
            for (Thread t : starters) {
                t.join();
            }
            if (!failures.isEmpty()) {
                throw failures.get(0);
            }
            return all;
        } catch (Exception e) {
            all.close();
            throw e;
        }
    }

    public int count() {
        return shards.size();
    }

    public int port(int shard) {
        return shards.get(shard).port;
    }

    public String jdbcUrl(int shard, String database) {
        return "jdbc:postgresql://127.0.0.1:" + port(shard) + "/" + database;
    }

    /** Creates {@code database} on every shard if it does not exist yet. */
    public void createDatabase(String database) throws SQLException {
        for (int i = 0; i < shards.size(); i++) {
            try (Connection c = DriverManager.getConnection(jdbcUrl(i, "postgres"), USER, null);
                 Statement s = c.createStatement()) {
                var rs = s.executeQuery("SELECT 1 FROM pg_database WHERE datname = '" + database.replace("'", "''") + "'");
                if (!rs.next()) {
                    s.execute("CREATE DATABASE \"" + database.replace("\"", "") + "\"");
                }
            }
        }
    }

    /**
     * Adds login role {@code user} with {@code password} on every shard, authenticated by {@code scram-sha-256}
     * (a {@code pg_hba.conf} line ahead of the loopback {@code trust} lines, then a reload), so a wrong password
     * is refused as on a real server. Idempotent.
     */
    public void addPasswordRole(String user, String password) throws Exception {
        if (!user.matches("[a-z_][a-z0-9_]*")) {
            throw new IllegalArgumentException("a plain role name, got " + user);
        }
        for (int i = 0; i < shards.size(); i++) {
            Path hba = shards.get(i).dataDir.resolve("pg_hba.conf");
            String lines = "host all " + user + " 127.0.0.1/32 scram-sha-256\nhost all " + user + " ::1/128 scram-sha-256\n";
            String current = Files.readString(hba);
            if (!current.contains(lines)) {
                Files.writeString(hba, lines + current);
            }
            try (Connection c = DriverManager.getConnection(jdbcUrl(i, "postgres"), USER, null); Statement s = c.createStatement()) {
                s.execute("SET password_encryption = 'scram-sha-256'");
                var rs = s.executeQuery("SELECT 1 FROM pg_roles WHERE rolname = '" + user + "'");
                boolean exists = rs.next();
                try (var set = c.prepareStatement("SELECT format(" + (exists ? "'ALTER ROLE %I LOGIN PASSWORD %L'" : "'CREATE ROLE %I LOGIN PASSWORD %L'") + ", ?, ?)")) {
                    set.setString(1, user);
                    set.setString(2, password);
                    var q = set.executeQuery();
                    q.next();
                    s.execute(q.getString(1));
                }
                s.execute("SELECT pg_reload_conf()");
            }
        }
    }

    /** Stops shard {@code i}'s server process (fast shutdown: open connections are cut). */
    public void stop(int i) throws IOException {
        shards.get(i).stop();
    }

    /**
     * Kills shard {@code i} as a crash does: SIGKILL to its postmaster and every child at once, so nothing shuts down
     * and open transactions are lost; returns once they are gone. {@link #restart} starts it again. A database whose
     * commits must survive this sets {@code synchronous_commit = on} for itself (the servers run with it off).
     */
    public void kill(int i) throws Exception {
        List<ProcessHandle> processes = Faults.postgresProcesses(port(i));
        Faults.signal("KILL", processes);
        for (ProcessHandle p : processes) {
            p.onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
        }
        shards.get(i).forget();
    }

    /** Starts shard {@code i} again on the same port and data directory. */
    public void restart(int i) throws IOException {
        shards.get(i).start();
    }

    @Override
    public void close() {
        for (Shard s : shards) {
            try {
                s.stop();
            } catch (IOException | RuntimeException e) {
                System.err.println("could not stop postgres shard " + s.index + ": " + e);
            }
        }
        try {
            LocalMachine.deleteRecursively(root);
        } catch (IOException ignored) {
            // best effort: it is a temp directory
        }
    }

    private static final class Shard {
        final int index;
        final Path dataDir;
        final int port;
        EmbeddedPostgres pg;

        Shard(int index, Path dataDir, int port) {
            this.index = index;
            this.dataDir = dataDir;
            this.port = port;
        }

        synchronized void start() throws IOException {
            if (pg != null) {
                return;
            }
            pg = EmbeddedPostgres.builder()
                    .setDataDirectory(dataDir)
                    .setCleanDataDirectory(false)
                    .setPort(port)
                    .setServerConfig("max_prepared_transactions", "0")
                    .setServerConfig("max_connections", "200")
                    .setServerConfig("shared_buffers", "128MB")
                    .setServerConfig("fsync", "off")
                    .setServerConfig("synchronous_commit", "off")
                    .setServerConfig("full_page_writes", "off")
                    .setOutputRedirector(ProcessBuilder.Redirect.DISCARD)
                    .setErrorRedirector(ProcessBuilder.Redirect.DISCARD)
                    .start();
        }

        /** After its processes were killed: releases the handle (its stop finds no server) so {@link #start} makes a new one. */
        synchronized void forget() {
            if (pg != null) {
                try {
                    pg.close();
                } catch (IOException | RuntimeException noServer) {
                    // expected: the server is gone
                } finally {
                    pg = null;
                }
            }
        }

        synchronized void stop() throws IOException {
            if (pg != null) {
                try {
                    pg.close();
                } finally {
                    pg = null;
                }
            }
        }
    }
}
