package io.sluice.core.setup;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.db.ShardMigrations;
import io.sluice.core.db.ShardRouting;
import io.sluice.routing.ShardRouter;

import java.io.PrintStream;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code ./sluice reshard}: moves every row of the app-routed tables ({@link ShardRouting#APP_TABLES}) to the
 * shard the configuration's routing names (hash, buckets, bucket map, shard list), then records that routing as
 * the next generation on every shard, so the jobs accept it. Rows keep every column, versions included, so the
 * version guards go on where they were.
 *
 * <p>Run it with the jobs stopped (stop-with-savepoint; resume them with the new configuration afterwards): it
 * records a re-shard-in-progress generation on every shard first, so a job starting from then on refuses to write,
 * and then refuses to go on while a Sluice sink is still connected to a shard. It is idempotent and resumable: a moved row is
 * upserted on its new shard and committed before it is deleted from the old one, so a run stopped anywhere is
 * finished by running it again. {@code --dry-run} reports what would move and changes nothing. Prints a progress
 * line per batch. A shard left out of the bucket map (still listed in {@code shards.urls}) is drained.
 *
 * <p>In the job jar too: {@code java -cp sluice-jobs.jar:$FLINK_HOME/lib/* io.sluice.core.setup.Reshard --config FILE [--dry-run]}.
 */
public final class Reshard {
    private static final int BATCH = 5_000;

    private Reshard() {
    }

    /** What a run found (dry run) or did: rows per table and (from shard, to shard). */
    public record Result(Map<String, Long> rows, String spec, int generation, boolean dryRun) {
        public long total() {
            return rows.values().stream().mapToLong(Long::longValue).sum();
        }
    }

    public static void main(String[] args) {
        if (java.util.Arrays.asList(args).contains("--help") || java.util.Arrays.asList(args).contains("-h")) {
            System.out.println("""
                    usage: ./sluice reshard --config FILE [--dry-run]
                      Moves the rows of every app whose shard the configured routing (routing.hash, routing.buckets,
                      routing.bucket-map, shards.urls) changes to its new shard, then records that routing on every
                      shard so the jobs accept it. Stop the jobs with a savepoint first. --dry-run reports what would
                      move and changes nothing. Settings as for the jobs: --config FILE, SLUICE_* variables, --key value.
                      See docs/operations.md#re-sharding.""");
            return;
        }
        try {
            Map<String, String> aliases = new HashMap<>(SluiceConfig.ALIASES);
            aliases.put("dry-run", "reshard.dry-run");
            RawConfig raw = RawConfig.fromArgs(args, System.getenv(), aliases);
            SluiceConfig config = SluiceConfig.from(raw);
            boolean dryRun = dryRun(raw);
            raw.rejectUnread();
            run(config, dryRun, System.out);
        } catch (io.sluice.core.config.ConfigException e) {
            System.err.println("sluice reshard: " + e.getMessage() + " (./sluice reshard --help)");
            System.exit(2);
        } catch (IllegalStateException | SQLException e) {
            System.err.println(e.getMessage().startsWith("sluice reshard") ? e.getMessage() : "sluice reshard: " + e.getMessage());
            System.exit(1);
        }
    }

    /** {@code reshard.dry-run} ({@code --dry-run}). */
    public static boolean dryRun(RawConfig raw) {
        return raw.bool("reshard.dry-run", false);
    }

    public static Result run(SluiceConfig config, boolean dryRun, PrintStream out) throws SQLException {
        ShardRouter target = config.router();
        List<SluiceConfig.Shard> shards = config.shards().list();
        out.println("sluice reshard: target routing " + target.spec() + " over " + shards.size() + " shards" + (dryRun ? " (dry run)" : ""));
        List<Connection> cs = new ArrayList<>();
        try {
            for (SluiceConfig.Shard s : shards) {
                Connection c = s.connect("sluice-reshard");
                cs.add(c);
                c.setNetworkTimeout(Runnable::run, 0); // a long scan or delete is not a dead socket here
                try (var st = c.createStatement()) {
                    st.execute("SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0");
                }
                if (!dryRun) {
                    ShardMigrations.apply(c); // a shard added to the list gets the schema first
                }
                out.println("  shard " + s.index() + ": recorded routing " + recorded(c));
            }
            if (!dryRun) {
                if (done(cs, target)) {
                    out.println("sluice reshard: every row is on its shard and every shard records " + target.spec() + "; nothing to do");
                    return new Result(Map.of(), target.spec(), ShardRouting.current(cs.get(0)).orElseThrow().generation(), false);
                }
                // first the marker, so a job starting from now on refuses to write; then no job may still be connected
                for (Connection c : cs) {
                    ShardRouting.record(c, ShardRouting.inProgress(target.spec()));
                }
                for (int i = 0; i < cs.size(); i++) {
                    refuseWhileJobsWrite(cs.get(i), i);
                }
            }
            Map<String, Long> moved = new LinkedHashMap<>();
            for (String table : ShardRouting.APP_TABLES) {
                for (int from = 0; from < shards.size(); from++) {
                    Map<Integer, List<String>> appsTo = misplaced(cs.get(from), table, from, target, moved);
                    for (Map.Entry<Integer, List<String>> e : appsTo.entrySet()) {
                        String what = table + " shard " + from + " -> " + e.getKey();
                        long n = moved.get(what);
                        out.printf(Locale.ROOT, "  %s: %,d rows of %,d apps%s%n", what, n, e.getValue().size(), dryRun ? " would move" : "");
                        if (!dryRun) {
                            copy(cs.get(from), cs.get(e.getKey()), table, e.getValue(), n, what, out);
                        }
                    }
                    if (!dryRun && !appsTo.isEmpty()) {
                        List<String> all = new ArrayList<>();
                        appsTo.values().forEach(all::addAll);
                        delete(cs.get(from), table, all);
                    }
                }
            }
            int generation = 0;
            StringBuilder generations = new StringBuilder();
            if (!dryRun) {
                for (int i = 0; i < cs.size(); i++) {
                    int g = ShardRouting.record(cs.get(i), target.spec()).generation();
                    generation = Math.max(generation, g);
                    generations.append(i == 0 ? "" : ", ").append("shard ").append(i).append(": generation ").append(g);
                }
            }
            Result r = new Result(moved, target.spec(), generation, dryRun);
            out.printf(Locale.ROOT, "sluice reshard: %,d rows %s; %s%n", r.total(), dryRun ? "would move" : "moved",
                    dryRun ? "nothing changed" : target.spec() + " recorded (" + generations + "): start the jobs with this configuration");
            return r;
        } finally {
            for (Connection c : cs) {
                try {
                    c.close();
                } catch (SQLException e) {
                    out.println("  (closing a shard connection failed: " + e.getMessage() + ")");
                }
            }
        }
    }

    /**
     * Sluice sinks connected to the shard: their writes could land behind the copy, and be deleted or left behind.
     * Waits up to 10 s for sessions of jobs that were just stopped to end, then refuses.
     */
    private static void refuseWhileJobsWrite(Connection c, int shard) throws SQLException {
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            StringBuilder running = new StringBuilder();
            try (PreparedStatement q = c.prepareStatement("SELECT application_name, count(*) FROM pg_stat_activity"
                    + " WHERE datname = current_database() AND application_name LIKE ? GROUP BY 1 ORDER BY 1")) {
                q.setString(1, SluiceConfig.Shard.SINK_APPLICATION_PREFIX + "%");
                try (ResultSet rs = q.executeQuery()) {
                    while (rs.next()) {
                        running.append(running.length() == 0 ? "" : ", ").append(rs.getLong(2)).append(" of ").append(rs.getString(1));
                    }
                }
            }
            if (running.length() == 0) {
                return;
            }
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("sluice reshard: shard " + shard + " has sessions of running Sluice jobs (" + running
                        + "): stop the jobs with a savepoint first (docs/operations.md#re-sharding)");
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for Sluice jobs to leave shard " + shard, e);
            }
        }
    }

    private static String recorded(Connection c) throws SQLException {
        try {
            return ShardRouting.current(c).map(g -> "generation " + g.generation() + ", " + g.spec())
                    .orElse("none (written by a Sluice that did not record it, which routed by crc32, or empty)");
        } catch (SQLException e) {
            if ("42P01".equals(e.getSQLState())) { // a shard the setup has not migrated yet (a dry run does not migrate)
                return "none (schema not migrated yet)";
            }
            throw e;
        }
    }

    /** Whether every shard already records {@code target} and holds only rows that belong there. */
    private static boolean done(List<Connection> cs, ShardRouter target) throws SQLException {
        for (int shard = 0; shard < cs.size(); shard++) {
            var g = ShardRouting.current(cs.get(shard));
            if (g.isEmpty() || !g.get().spec().equals(target.spec())) {
                return false;
            }
            for (String table : ShardRouting.APP_TABLES) {
                if (!misplaced(cs.get(shard), table, shard, target, new HashMap<>()).isEmpty()) {
                    return false;
                }
            }
        }
        return true;
    }

    /** The apps on {@code shard} that the target routing puts elsewhere, by target shard; adds their row counts to {@code moved}. */
    private static Map<Integer, List<String>> misplaced(Connection c, String table, int shard, ShardRouter target, Map<String, Long> moved) throws SQLException {
        Map<Integer, List<String>> out = new TreeMap<>();
        if (!tableExists(c, table)) { // a new shard in a dry run, not migrated yet: nothing on it
            return out;
        }
        try (PreparedStatement q = c.prepareStatement("SELECT app_id, count(*) FROM " + table + " GROUP BY app_id");
             ResultSet rs = q.executeQuery()) {
            while (rs.next()) {
                String app = rs.getString(1);
                int to = target.shardOf(app);
                if (to != shard) {
                    out.computeIfAbsent(to, k -> new ArrayList<>()).add(app);
                    moved.merge(table + " shard " + shard + " -> " + to, rs.getLong(2), Long::sum);
                }
            }
        }
        return out;
    }

    /** Upserts the apps' rows on {@code to}, every column as it is on {@code from}, in committed batches. */
    private static void copy(Connection from, Connection to, String table, List<String> apps, long expected, String what, PrintStream out) throws SQLException {
        List<String> key = primaryKey(to, table);
        List<String> columns = columns(to, table);
        StringBuilder set = new StringBuilder();
        for (String col : columns) {
            if (!key.contains(col)) {
                set.append(set.length() == 0 ? "" : ", ").append(col).append(" = EXCLUDED.").append(col);
            }
        }
        String upsert = "INSERT INTO " + table + " SELECT * FROM jsonb_populate_recordset(NULL::" + table + ", ?::jsonb)"
                + " ON CONFLICT (" + String.join(", ", key) + ") DO UPDATE SET " + set;
        boolean auto = from.getAutoCommit();
        from.setAutoCommit(false); // a cursor: the rows stream in batches
        to.setAutoCommit(false);
        long done = 0;
        try (PreparedStatement read = from.prepareStatement("SELECT row_to_json(t)::text FROM " + table + " t WHERE app_id = ANY(?)");
             PreparedStatement write = to.prepareStatement(upsert)) {
            read.setFetchSize(BATCH);
            read.setArray(1, from.createArrayOf("text", apps.toArray()));
            try (ResultSet rs = read.executeQuery()) {
                StringBuilder batch = new StringBuilder("[");
                int n = 0;
                while (true) {
                    boolean more = rs.next();
                    if (more) {
                        batch.append(n == 0 ? "" : ",").append(rs.getString(1));
                        n++;
                    }
                    if (n == BATCH || (!more && n > 0)) {
                        write.setString(1, batch.append(']').toString());
                        write.executeUpdate();
                        to.commit();
                        done += n;
                        out.printf(Locale.ROOT, "  %s: %,d / %,d rows copied%n", what, done, expected);
                        batch.setLength(0);
                        batch.append('[');
                        n = 0;
                    }
                    if (!more) {
                        break;
                    }
                }
            }
            from.commit();
        } catch (SQLException e) {
            from.rollback();
            to.rollback();
            throw e;
        } finally {
            from.setAutoCommit(auto);
            to.setAutoCommit(true);
        }
    }

    private static boolean tableExists(Connection c, String table) throws SQLException {
        try (PreparedStatement q = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            q.setString(1, table);
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    private static void delete(Connection c, String table, List<String> apps) throws SQLException {
        try (PreparedStatement d = c.prepareStatement("DELETE FROM " + table + " WHERE app_id = ANY(?)")) {
            d.setArray(1, c.createArrayOf("text", apps.toArray()));
            d.executeUpdate();
        }
    }

    private static List<String> primaryKey(Connection c, String table) throws SQLException {
        List<String> out = new ArrayList<>();
        try (PreparedStatement q = c.prepareStatement("""
                SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                 WHERE i.indrelid = ?::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)""")) {
            q.setString(1, table);
            try (ResultSet rs = q.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }

    private static List<String> columns(Connection c, String table) throws SQLException {
        List<String> out = new ArrayList<>();
        try (PreparedStatement q = c.prepareStatement(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position")) {
            q.setString(1, table);
            try (ResultSet rs = q.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }
}
