package io.sluice.testkit;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;

import java.io.IOException;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/** Failure injection for job tests: a sink that throws once, killed shard connections, and waiting for a condition or a result. */
public final class Faults {
    /** Static because the MiniCluster runs the job in the test's JVM; one failing sink at a time. */
    private static final AtomicLong ROWS_SEEN = new AtomicLong();
    private static final AtomicLong THROW_AT = new AtomicLong(Long.MAX_VALUE);
    private static final AtomicBoolean THROWN = new AtomicBoolean();

    private Faults() {
    }

    /** Arms {@link ThrowOnceSink}: its writer throws once when {@code rows} rows have reached it, across restarts. */
    public static void throwOnceAfter(long rows) {
        ROWS_SEEN.set(0);
        THROWN.set(false);
        THROW_AT.set(rows);
    }

    public static boolean thrown() {
        return THROWN.get();
    }

    public static void disarm() {
        THROW_AT.set(Long.MAX_VALUE);
    }

    public static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 120_000;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out after 120 s waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    /** Reads until {@code done} holds for what was read or {@code timeoutMs} passes, every {@code everyMs}; returns the last read. */
    public static <T> T poll(Callable<T> read, Predicate<T> done, long timeoutMs, long everyMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            T value = read.call();
            if (done.test(value) || System.currentTimeMillis() > deadline) {
                return value;
            }
            Thread.sleep(everyMs);
        }
    }

    /** Terminates every other backend on the shard's test database; returns how many. */
    public static int killConnections(TestStack stack, int shard) throws SQLException {
        try (Connection c = stack.shard(shard); ResultSet rs = c.createStatement().executeQuery(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /** Wraps a real sink; its writer throws once when the armed number of rows ({@link #throwOnceAfter}) has reached the sink. */
    public record ThrowOnceSink<T>(Sink<T> delegate) implements Sink<T> {
        @Override
        public SinkWriter<T> createWriter(WriterInitContext context) throws IOException {
            SinkWriter<T> w = delegate.createWriter(context);
            return new SinkWriter<>() {
                @Override
                public void write(T element, Context ctx) throws IOException, InterruptedException {
                    if (ROWS_SEEN.incrementAndGet() >= THROW_AT.get() && THROWN.compareAndSet(false, true)) {
                        throw new IllegalStateException("injected failure after " + THROW_AT.get() + " rows");
                    }
                    w.write(element, ctx);
                }

                @Override
                public void flush(boolean endOfInput) throws IOException, InterruptedException {
                    w.flush(endOfInput);
                }

                @Override
                public void close() throws Exception {
                    w.close();
                }
            };
        }
    }
}
