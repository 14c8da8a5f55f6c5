package io.sluice.jobs.shards;

import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.util.function.ThrowingRunnable;

/** Runs each mail at once on the thread that sends it: for tests that drive a shard sink writer without a task. */
final class DirectMailbox implements MailboxExecutor {
    @Override
    public void execute(MailOptions options, ThrowingRunnable<? extends Exception> command, String description, Object... args) {
        try {
            command.run();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void yield() {
        throw new UnsupportedOperationException("these tests never wait for a batch in write()");
    }

    @Override
    public boolean tryYield() {
        return false;
    }

    @Override
    public boolean shouldInterrupt() {
        return false;
    }
}
