package io.sluice.jobs.common;

import org.apache.flink.runtime.execution.SuppressRestartsException;

import java.sql.SQLException;
import java.util.Optional;

/**
 * Errors that no restart can fix. Thrown from a task they fail the job at once instead of looping through
 * the restart strategy: Flink's {@link SuppressRestartsException} around an {@link IllegalStateException}
 * whose message names what is wrong and the fix.
 */
public final class Fatal {
    private Fatal() {
    }

    public static SuppressRestartsException stop(String message) {
        return new SuppressRestartsException(new IllegalStateException(message));
    }

    /** Stops the job with {@code problem}'s message, if there is one. */
    public static void stopIf(Optional<String> problem) {
        if (problem.isPresent()) {
            throw stop(problem.get());
        }
    }

    /** Stops the job if no retry can fix {@code e} ({@link #ifTerminal}); returns otherwise, for the caller to retry. */
    public static void rethrowIfTerminal(int shard, SQLException e) {
        Optional<SuppressRestartsException> fatal = ifTerminal(shard, e);
        if (fatal.isPresent()) {
            throw fatal.get();
        }
    }

    /**
     * The job-stopping error for a shard error no retry can fix: SQLSTATE class 28 (authentication), 3D
     * (no such database) or 42 (no such table or column, no privilege: the schema is missing or not Sluice's).
     */
    public static Optional<SuppressRestartsException> ifTerminal(int shard, SQLException e) {
        String state = e.getSQLState();
        if (state == null) {
            return Optional.empty();
        }
        String fix;
        if (state.startsWith("28")) {
            fix = "check shards.user and shards.password (or shards." + shard + ".user/.password, SLUICE_SHARDS_PASSWORD) and the shard's pg_hba.conf";
        } else if (state.startsWith("3D")) {
            fix = "check the database name in shards.urls entry " + shard + ", or create it";
        } else if (state.startsWith("42")) {
            fix = "run the stack setup (io.sluice.core.setup.StackSetup, or compose's setup service) so the shard has Sluice's tables,"
                    + " and grant the shard user access to them";
        } else {
            return Optional.empty();
        }
        return Optional.of(stop("shard " + shard + ": " + e.getMessage() + " (SQLSTATE " + state + "). No retry can fix this: " + fix + "."));
    }
}
