package io.sluice.testkit;

import io.sluice.core.config.SluiceConfig;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.SupportsWriterState;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.testutils.junit.SharedReference;

import java.io.IOException;
import java.io.Serializable;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Failure injection for job tests: a sink that throws once, killed shard connections, and signals to a shard's processes. The sink's
 * trigger is shared between the test and the job running in the test's MiniCluster through Flink's
 * {@code SharedObjectsExtension} (a non-static {@code @RegisterExtension} field, so one per test), not
 * through static fields, so two tests never arm each other's fault.
 */
public final class Faults {
    private Faults() {
    }

    /** When a {@link ThrowOnceSink} throws: once, when {@code rows} rows have reached it, across restarts. */
    public static final class ThrowOnce implements Serializable {
        private final AtomicLong seen = new AtomicLong();
        private final AtomicLong throwAt;
        private final AtomicBoolean thrown = new AtomicBoolean();

        public ThrowOnce(long rows) {
            this.throwAt = new AtomicLong(rows);
        }

        public boolean thrown() {
            return thrown.get();
        }

        /** Throws at the next row, unless it has thrown already. */
        public void throwNow() {
            throwAt.set(0);
        }

        /** Never throws from now on (e.g. before a stop-with-savepoint). */
        public void disarm() {
            throwAt.set(Long.MAX_VALUE);
        }

        boolean shouldThrow() {
            return seen.incrementAndGet() >= throwAt.get() && thrown.compareAndSet(false, true);
        }

        long rows() {
            return throwAt.get();
        }
    }

    /**
     * Readies {@code c} to hold a table lock for as long as its caller needs: autocommit off, and no
     * idle-in-transaction limit (the shard sessions' 1 min would end a longer lock, and fail the rollback). Returns it;
     * closes it if it cannot.
     */
    public static Connection lockSession(Connection c) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute("SET idle_in_transaction_session_timeout = 0");
            c.setAutoCommit(false);
            return c;
        } catch (SQLException e) {
            try {
                c.close();
            } catch (SQLException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    /**
     * Once a Sluice sink is connected to the shard's test database ({@code application_name}
     * {@link SluiceConfig.Shard#SINK_APPLICATION_PREFIX}{@code <job>}; a job that is restarting has none yet, waited for up
     * to 60 s), terminates every other backend there, the tests' own probes too; returns how many were a sink's. Fails,
     * naming the shard, if no sink connects within the wait.
     */
    public static int killConnections(TestStack stack, int shard) throws Exception {
        Await.until("a Sluice sink connected to shard " + shard + " (application_name " + SINK_SESSIONS + "), to kill its connections",
                Duration.ofSeconds(60), Duration.ofMillis(100), () -> count(stack, shard, "SELECT count(*) FROM pg_stat_activity"
                        + " WHERE datname = current_database() AND application_name LIKE ?"), n -> n > 0);
        return count(stack, shard, "SELECT count(*) FILTER (WHERE terminated AND application_name LIKE ?) FROM (SELECT application_name,"
                + " pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) t");
    }

    /** The {@code application_name} pattern of the sinks' sessions, the one parameter of the {@link #count} queries. */
    private static final String SINK_SESSIONS = SluiceConfig.Shard.SINK_APPLICATION_PREFIX + "%";

    private static int count(TestStack stack, int shard, String sql) throws SQLException {
        try (Connection c = stack.shard(shard); PreparedStatement q = c.prepareStatement(sql)) {
            q.setString(1, SINK_SESSIONS);
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    /**
     * The processes of the Postgres server listening on {@code port}: its postmaster (found by its {@code -p} argument)
     * and every child, for signals that hang or kill a whole shard.
     */
    public static List<ProcessHandle> postgresProcesses(int port) {
        List<ProcessHandle> out = new java.util.ArrayList<>();
        ProcessHandle.allProcesses().filter(p -> p.info().commandLine().map(c -> c.contains("/bin/postgres ") && c.contains(" -p " + port + " ")).orElse(false))
                .forEach(postmaster -> {
                    out.add(postmaster);
                    postmaster.descendants().forEach(out::add);
                });
        if (out.isEmpty()) {
            throw new IllegalStateException("no postgres server process listens on port " + port);
        }
        return out;
    }

    /**
     * Sends {@code signal} (e.g. STOP, CONT, KILL) to every process in {@code processes}; fails if {@code kill} does for
     * any other reason than a process that ended by itself since it was listed (a backend whose client disconnected).
     */
    public static void signal(String signal, List<ProcessHandle> processes) throws IOException, InterruptedException {
        java.util.List<String> cmd = new java.util.ArrayList<>(List.of("kill", "-" + signal));
        processes.forEach(p -> cmd.add(String.valueOf(p.pid())));
        try {
            LocalMachine.run(cmd);
        } catch (IOException e) {
            List<String> errors = e.getMessage().lines().filter(l -> l.contains("kill:")).toList();
            if (errors.isEmpty() || !errors.stream().allMatch(l -> l.endsWith("No such process"))) {
                throw e;
            }
        }
    }

    /**
     * Wraps a real sink that keeps writer state (the shard sinks carry the rows a shard has not committed); its writer
     * throws once, when the shared {@link ThrowOnce} says so, and hands state through unchanged.
     */
    @SuppressWarnings({"unchecked", "rawtypes"})
    public record ThrowOnceSink<T>(Sink<T> delegate, SharedReference<ThrowOnce> fault) implements Sink<T>, SupportsWriterState<T, Object> {
        @Override
        public StatefulSinkWriter<T, Object> createWriter(WriterInitContext context) throws IOException {
            return wrap((StatefulSinkWriter<T, Object>) delegate.createWriter(context));
        }

        @Override
        public StatefulSinkWriter<T, Object> restoreWriter(WriterInitContext context, Collection<Object> recovered) throws IOException {
            return wrap(((SupportsWriterState<T, Object>) delegate).restoreWriter(context, recovered));
        }

        @Override
        public SimpleVersionedSerializer<Object> getWriterStateSerializer() {
            return ((SupportsWriterState<T, Object>) delegate).getWriterStateSerializer();
        }

        private StatefulSinkWriter<T, Object> wrap(StatefulSinkWriter<T, Object> w) {
            return new StatefulSinkWriter<>() {
                @Override
                public void write(T element, Context ctx) throws IOException, InterruptedException {
                    throwOrWrite(fault, w, element, ctx);
                }

                @Override
                public void flush(boolean endOfInput) throws IOException, InterruptedException {
                    w.flush(endOfInput);
                }

                @Override
                public List<Object> snapshotState(long checkpointId) throws IOException {
                    return w.snapshotState(checkpointId);
                }

                @Override
                public void close() throws Exception {
                    w.close();
                }
            };
        }
    }

    /** Wraps a real sink without writer state; its writer throws once, when the shared {@link ThrowOnce} says so. */
    public record ThrowOnceStatelessSink<T>(Sink<T> delegate, SharedReference<ThrowOnce> fault) implements Sink<T> {
        @Override
        public org.apache.flink.api.connector.sink2.SinkWriter<T> createWriter(WriterInitContext context) throws IOException {
            org.apache.flink.api.connector.sink2.SinkWriter<T> w = delegate.createWriter(context);
            return new org.apache.flink.api.connector.sink2.SinkWriter<>() {
                @Override
                public void write(T element, Context ctx) throws IOException, InterruptedException {
                    throwOrWrite(fault, w, element, ctx);
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

    private static <T> void throwOrWrite(SharedReference<ThrowOnce> fault, org.apache.flink.api.connector.sink2.SinkWriter<T> w, T element,
                                         org.apache.flink.api.connector.sink2.SinkWriter.Context ctx) throws IOException, InterruptedException {
        ThrowOnce f = fault.get();
        if (f.shouldThrow()) {
            throw new IllegalStateException("injected failure after " + f.rows() + " rows");
        }
        w.write(element, ctx);
    }
}
