package io.sluice.core.db;

import io.sluice.routing.ShardRouter;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Optional;

/**
 * The routing a shard was written with ({@code sluice_routing}: generations of {@code <hash>@<bucket map>}
 * specs, the newest in force), and the check every writer and reader makes against its configuration.
 * A shard with rows but no record was written by a Sluice from before routing was recorded, which routed by
 * {@code crc32}.
 */
public final class ShardRouting {
    /** The tables whose rows live on their app's shard. */
    public static final List<String> APP_TABLES = List.of("subscriptions", "user_event_counts", "app_hourly_summary");

    private ShardRouting() {
    }

    /** A recorded generation. */
    public record Generation(int generation, String spec) {
    }

    /** The newest recorded generation, if any. */
    public static Optional<Generation> current(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT generation, spec FROM sluice_routing ORDER BY generation DESC LIMIT 1")) {
            return rs.next() ? Optional.of(new Generation(rs.getInt(1), rs.getString(2))) : Optional.empty();
        }
    }

    /** Records {@code spec} as the next generation unless it is already the current one; returns the current generation. */
    public static Generation record(Connection c, String spec) throws SQLException {
        Optional<Generation> now = current(c);
        if (now.isPresent() && now.get().spec().equals(spec)) {
            return now.get();
        }
        int next = now.map(g -> g.generation() + 1).orElse(1);
        try (PreparedStatement ins = c.prepareStatement("INSERT INTO sluice_routing (generation, spec) VALUES (?, ?) ON CONFLICT DO NOTHING")) {
            ins.setInt(1, next);
            ins.setString(2, spec);
            ins.executeUpdate();
        }
        return current(c).orElseThrow();
    }

    /** Whether any app-routed table of this shard holds a row. */
    public static boolean hasAppRows(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            for (String t : APP_TABLES) {
                try (ResultSet rs = s.executeQuery("SELECT EXISTS (SELECT 1 FROM " + t + ")")) {
                    rs.next();
                    if (rs.getBoolean(1)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /** The spec recorded while {@code ./sluice reshard} moves rows to {@code target}: no configuration matches it. */
    public static String inProgress(String target) {
        return "resharding-to:" + target;
    }

    /**
     * Checks shard {@code shard} against {@code router}: empty if they agree or nothing is recorded yet, else
     * what is wrong and the fix. A shard with rows but no record was written by a Sluice from before routing was
     * recorded, which routed by crc32; it only agrees with a crc32 routing.
     */
    public static Optional<String> check(Connection c, int shard, ShardRouter router) throws SQLException {
        Optional<Generation> recorded = current(c);
        String spec = router.spec();
        if (recorded.isEmpty()) {
            if (router.hash() != ShardRouter.Hash.CRC32 && hasAppRows(c)) {
                return Optional.of("shard " + shard + " holds rows written before Sluice recorded its routing, which routed by crc32;"
                        + " this configuration routes by " + spec + ". Either set routing.hash: crc32 (and the routing.bucket-map those"
                        + " rows were written with), or stop the jobs and run ./sluice reshard with this configuration to move the rows"
                        + " (docs/operations.md#re-sharding)");
            }
            return Optional.empty();
        }
        Generation g = recorded.get();
        if (g.spec().equals(spec)) {
            return Optional.empty();
        }
        if (g.spec().startsWith(inProgress(""))) {
            return Optional.of("shard " + shard + " is being re-sharded (generation " + g.generation() + ", " + g.spec() + "): start the jobs"
                    + " when ./sluice reshard has finished, with the routing it moves to (docs/operations.md#re-sharding)");
        }
        return Optional.of("shard " + shard + " was written with routing generation " + g.generation() + ", " + g.spec()
                + ", but this configuration routes by " + spec + ": rows would be looked for on the wrong shard. Either set"
                + " routing.hash and routing.bucket-map back to " + g.spec() + ", or stop the jobs with a savepoint and run"
                + " ./sluice reshard with this configuration, which moves the rows and records it (docs/operations.md#re-sharding)");
    }

    /**
     * Checks the shard, and if it passes and has no record, records {@code router} as generation 1 (the first writer
     * does this, once every shard it can reach passed {@link #check}); then checks again: another writer may have
     * recorded another.
     */
    public static Optional<String> recordFirst(Connection c, int shard, ShardRouter router) throws SQLException {
        Optional<String> wrong = check(c, shard, router); // never stamp a shard the check refuses (rows of a crc32 build)
        if (wrong.isPresent()) {
            return wrong;
        }
        if (current(c).isEmpty()) {
            try (PreparedStatement ins = c.prepareStatement("INSERT INTO sluice_routing (generation, spec) VALUES (1, ?) ON CONFLICT DO NOTHING")) {
                ins.setString(1, router.spec());
                ins.executeUpdate();
            }
        }
        return check(c, shard, router);
    }
}
