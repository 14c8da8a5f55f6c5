package io.sluice.core.db;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * Applies the shard schema ({@code db/shard/V<n>__*.sql}, listed in {@code db/shard/migrations.txt})
 * idempotently: each version once, recorded in {@code sluice_schema_version}, under a transaction-level
 * advisory lock so jobs starting at the same time do not race. Safe to call at every start.
 */
public final class ShardMigrations {
    private static final long LOCK_KEY = 0x51_1ce_0001L; // any constant shared by all Sluice processes

    private ShardMigrations() {
    }

    /** Returns the versions applied by this call (empty when the shard was already current). */
    public static List<Integer> apply(Connection c) throws SQLException {
        boolean auto = c.getAutoCommit();
        c.setAutoCommit(false);
        List<Integer> applied = new ArrayList<>();
        try (Statement s = c.createStatement()) {
            s.execute("SET LOCAL lock_timeout = 0"); // wait for a concurrent setup or a table lock, however long
            s.execute("SELECT pg_advisory_xact_lock(" + LOCK_KEY + ")");
            s.execute("CREATE TABLE IF NOT EXISTS sluice_schema_version (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
            for (String file : index()) {
                int version = Integer.parseInt(file.substring(1, file.indexOf("__")));
                try (PreparedStatement q = c.prepareStatement("SELECT 1 FROM sluice_schema_version WHERE version = ?")) {
                    q.setInt(1, version);
                    try (ResultSet rs = q.executeQuery()) {
                        if (rs.next()) {
                            continue;
                        }
                    }
                }
                s.execute(resource(file));
                try (PreparedStatement ins = c.prepareStatement("INSERT INTO sluice_schema_version (version, name) VALUES (?, ?)")) {
                    ins.setInt(1, version);
                    ins.setString(2, file);
                    ins.executeUpdate();
                }
                applied.add(version);
            }
            c.commit();
        } catch (SQLException | RuntimeException e) {
            c.rollback();
            throw e;
        } finally {
            c.setAutoCommit(auto);
        }
        return applied;
    }

    static List<String> index() {
        List<String> files = new ArrayList<>();
        for (String line : resource("migrations.txt").split("\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                files.add(line.trim());
            }
        }
        return files;
    }

    private static String resource(String name) {
        try (InputStream in = ShardMigrations.class.getResourceAsStream("/db/shard/" + name)) {
            if (in == null) {
                throw new IllegalStateException("migration resource /db/shard/" + name + " is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
