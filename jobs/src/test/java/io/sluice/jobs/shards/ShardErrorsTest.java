package io.sluice.jobs.shards;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.sql.SQLException;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Which shard errors {@link ShardedSink} isolates to a dead letter (the row caused them: retrying can never
 * succeed) and which it retries with backoff (the shard or the connection did). Nothing fails the job today:
 * errors no retry can fix (a wrong password, a missing database) are retried too, with a warning per attempt.
 */
class ShardErrorsTest {
    @ParameterizedTest(name = "SQLSTATE {0} is the row's fault")
    @ValueSource(strings = {"22P05", "22001", "22003", "22P02", "23505", "23502", "23514", "54000", "54001"})
    void dataExceptionsConstraintViolationsAndProgramLimitsAreIsolated(String state) {
        assertThat(ShardedSink.rowError(new SQLException("rejected", state))).isTrue();
    }

    @ParameterizedTest(name = "SQLSTATE {0} is retried")
    @ValueSource(strings = {"08006", "08001", "40001", "40P01", "57P01", "53300", "55P03", "57014", "42P01", "3D000", "28P01", "XX000"})
    void connectionTransactionAndSchemaErrorsAreRetried(String state) {
        assertThat(ShardedSink.rowError(new SQLException("shard trouble", state))).isFalse();
    }

    @Test
    void anErrorWithoutSqlStateIsRetried() {
        assertThat(ShardedSink.rowError(new SQLException("I/O error"))).isFalse();
    }
}
