package io.sluice.jobs.shards;

import io.sluice.jobs.common.Fatal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.sql.SQLException;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Which shard errors {@link ShardedSink} isolates to a dead letter (the row caused them: retrying can never
 * succeed), which stop the job without a restart (no retry can fix them: a wrong password, a missing database
 * or table), and which it retries with backoff (the shard or the connection did).
 */
class ShardErrorsTest {
    @ParameterizedTest(name = "SQLSTATE {0} is the row's fault")
    @ValueSource(strings = {"22P05", "22001", "22003", "22P02", "23505", "23502", "23514", "54000", "54001"})
    void dataExceptionsConstraintViolationsAndProgramLimitsAreIsolated(String state) {
        assertThat(ShardedSink.rowError(new SQLException("rejected", state))).isTrue();
    }

    @ParameterizedTest(name = "SQLSTATE {0} is retried")
    @ValueSource(strings = {"08006", "08001", "40001", "40P01", "57P01", "53300", "55P03", "57014", "42P01", "3D000", "28P01", "XX000"})
    void connectionTransactionAndSchemaErrorsAreNotTheRowsFault(String state) {
        assertThat(ShardedSink.rowError(new SQLException("shard trouble", state))).isFalse();
    }

    @ParameterizedTest(name = "SQLSTATE {0} stops the job")
    @ValueSource(strings = {"28P01", "28000", "3D000", "42P01", "42703", "42501"})
    void authenticationMissingDatabaseAndSchemaErrorsStopTheJobNamingShardAndFix(String state) {
        var fatal = Fatal.ifTerminal(3, new SQLException("boom", state));
        assertThat(fatal).isPresent();
        assertThat(fatal.get().getCause()).hasMessageStartingWith("shard 3: boom (SQLSTATE " + state + "). No retry can fix this: ");
    }

    @ParameterizedTest(name = "SQLSTATE {0} is retried")
    @ValueSource(strings = {"08006", "08001", "40001", "40P01", "57P01", "53300", "55P03", "57014", "25P03", "XX000"})
    void connectionLockAndTransactionErrorsAreRetried(String state) {
        assertThat(Fatal.ifTerminal(0, new SQLException("shard trouble", state))).isEmpty();
        assertThat(ShardedSink.rowError(new SQLException("shard trouble", state))).isFalse();
    }

    @Test
    void anErrorWithoutSqlStateIsRetried() {
        assertThat(ShardedSink.rowError(new SQLException("I/O error"))).isFalse();
    }
}
