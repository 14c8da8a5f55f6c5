package io.sluice.testkit;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/**
 * Waiting in tests: poll until a condition holds, or fail with what was awaited and the last value seen.
 * Never returns silently on a timeout, so an assertion after a wait never runs on a value the wait gave up on.
 * Use a positive sentinel (a later record processed, a metric) instead of sleeping and asserting that
 * something did not happen.
 */
public final class Await {
    private Await() {
    }

    /**
     * Reads every {@code every} until {@code done} holds for what was read; returns that value. Fails after
     * {@code timeout} with {@code what}, the last value read (or the last exception the read threw).
     */
    public static <T> T until(String what, Duration timeout, Duration every, Callable<T> read, Predicate<T> done) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        T last = null;
        Exception lastFailure = null;
        while (true) {
            try {
                last = read.call();
                lastFailure = null;
                if (done.test(last)) {
                    return last;
                }
            } catch (InterruptedException e) {
                throw e;
            } catch (Exception e) {
                lastFailure = e; // e.g. a shard the test killed: read again until the deadline
            }
            if (System.nanoTime() - deadline > 0) {
                AssertionError timedOut = new AssertionError("timed out after " + timeout.toSeconds() + " s waiting for " + what
                        + (lastFailure != null ? "; the last read failed: " + lastFailure : "; last value: " + abbreviate(last)));
                if (lastFailure != null) {
                    timedOut.initCause(lastFailure);
                }
                throw timedOut;
            }
            Thread.sleep(every.toMillis());
        }
    }

    /** {@link #until(String, Duration, Duration, Callable, Predicate)}, reading every 250 ms. */
    public static <T> T until(String what, Duration timeout, Callable<T> read, Predicate<T> done) throws Exception {
        return until(what, timeout, Duration.ofMillis(250), read, done);
    }

    /** Waits until {@code condition} holds, for up to {@code timeout}; fails naming {@code what}. */
    public static void until(String what, Duration timeout, BooleanSupplier condition) throws Exception {
        until(what, timeout, Duration.ofMillis(50), condition::getAsBoolean, ok -> ok);
    }

    private static String abbreviate(Object value) {
        String s = String.valueOf(value);
        return s.length() <= 2_000 ? s : s.substring(0, 2_000) + "... (" + s.length() + " characters)";
    }
}
