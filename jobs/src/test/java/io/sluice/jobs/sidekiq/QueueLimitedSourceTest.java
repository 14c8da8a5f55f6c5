package io.sluice.jobs.sidekiq;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Which Redis errors the queue-length reader waits out, and which stop the bridge (real Redis 6/7 error texts). */
class QueueLimitedSourceTest {
    @Test
    void errorsARetryCanOutlastAreWaitedOut() {
        for (String transient_ : new String[] {"LOADING Redis is loading the dataset in memory",
                "READONLY You can't write against a read only replica.", "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
                "Connection refused", "Read timed out", "redis-server closed the connection"}) {
            assertThat(QueueLimitedSource.Gate.refusal(transient_, "queue:default")).as(transient_).isNull();
            assertThat(QueueLimitedSource.Gate.refusal(transient_, null)).as(transient_).isNull();
        }
    }

    @Test
    void errorsThatNeverHealStopTheBridgeNamingTheFix() {
        assertThat(QueueLimitedSource.Gate.refusal("WRONGTYPE Operation against a key holding the wrong kind of value", "queue:vip"))
                .contains("Redis key queue:vip holds another type than a Sidekiq queue");
        for (String auth : new String[] {"NOAUTH Authentication required.", "Redis refused AUTH: WRONGPASS invalid username-password pair or user is disabled.",
                "Redis refused AUTH: ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                "Redis refused AUTH: ERR Client sent AUTH, but no password is set", "Redis refused AUTH: ERR invalid password"}) {
            assertThat(QueueLimitedSource.Gate.refusal(auth, null)).as(auth).contains("sidekiq.redis-password");
        }
        assertThat(QueueLimitedSource.Gate.refusal("NOPERM this user has no permissions to run the 'llen' command", "queue:default"))
                .contains("ACL");
        assertThat(QueueLimitedSource.Gate.refusal("Redis refused SELECT 42: ERR DB index is out of range", null)).contains("sidekiq.redis-url");
    }
}
