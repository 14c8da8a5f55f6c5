package io.sluice.jobs.common;

import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.api.connector.sink2.CommitterInitContext;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.connector.kafka.sink.KafkaCommittable;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.KafkaWriterState;
import org.apache.flink.connector.kafka.sink.TwoPhaseCommittingStatefulSink;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.streaming.api.connector.sink2.CommittableMessage;
import org.apache.flink.streaming.api.connector.sink2.SupportsPostCommitTopology;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.lineage.LineageVertex;
import org.apache.flink.streaming.api.lineage.LineageVertexProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.lang.reflect.Field;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A {@link KafkaSink} whose writers close the admin client the connector opens and never closes. With the POOLING
 * transaction naming, the exactly-once writer (connector 5.0.0-2.2) creates an admin client at start to list the
 * lingering transactions of its prefix, keeps it in a field, and leaves it open in {@code close()}. Each open admin client
 * is a thread, and that thread holds the job's class loader: every submission or rescale (and every restart that moved
 * the job off a TaskManager) left one more loader (about 20 MB of metaspace) there, until the TaskManagers died of
 * {@code OutOfMemoryError: Metaspace}. A writer that fails in the connector's own {@code initialize()} (a broker down at
 * start) is closed by the connector before this class sees it, and its admin client still leaks.
 *
 * <p>Its committer is the connector's, wrapped to abort the transaction FLINK-40626 orphans at a restore
 * ({@link OrphanAbortingCommitter}; it learns here when its task's writer has been created). Everything else is the
 * wrapped sink's: the same writer, state, committable format, post-commit topology and lineage, so the job graph, uids and
 * savepoints are unchanged. If a connector version has no such field, closing it is skipped
 * (and logged once); {@code KafkaSinkLeakTest} fails then, as a reminder to drop this class.
 */
public final class AdminClosingKafkaSink<T> implements TwoPhaseCommittingStatefulSink<T, KafkaWriterState, KafkaCommittable>,
        SupportsPostCommitTopology<KafkaCommittable>, LineageVertexProvider {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(AdminClosingKafkaSink.class);
    static final String FIELD = "adminClient";

    private final KafkaSink<T> sink;
    /** The producer settings of the sink (bootstrap, security, timeouts), for the one-off producers that abort orphaned transactions. */
    private final Properties producerConfig;

    public AdminClosingKafkaSink(KafkaSink<T> sink, Properties producerConfig) {
        this.sink = sink;
        this.producerConfig = producerConfig;
    }

    /**
     * The tasks (job, task, subtask, attempt) whose writer has been created: their committer is past its restored commits
     * ({@link OrphanAbortingCommitter}). An entry lives as long as its writer.
     */
    private static final Set<String> WRITERS_CREATED = ConcurrentHashMap.newKeySet();

    static String taskKey(org.apache.flink.api.connector.sink2.InitContext context) {
        return context.getJobInfo().getJobId() + "/" + context.getTaskInfo().getTaskName() + "/" + context.getTaskInfo().getIndexOfThisSubtask()
                + "/" + context.getTaskInfo().getAttemptNumber();
    }

    @Override
    public PrecommittingStatefulSinkWriter<T, KafkaWriterState, KafkaCommittable> createWriter(WriterInitContext context) throws IOException {
        String task = taskKey(context); // before the connector's writer opens its first transaction
        WRITERS_CREATED.add(task);
        try {
            return new Writer<>(sink.createWriter(context), task);
        } catch (IOException | RuntimeException e) {
            WRITERS_CREATED.remove(task);
            throw e;
        }
    }

    @Override
    public PrecommittingStatefulSinkWriter<T, KafkaWriterState, KafkaCommittable> restoreWriter(WriterInitContext context,
            Collection<KafkaWriterState> recovered) throws IOException {
        String task = taskKey(context); // before the connector's writer opens its first transaction
        WRITERS_CREATED.add(task);
        try {
            return new Writer<>(sink.restoreWriter(context, recovered), task);
        } catch (RuntimeException e) {
            WRITERS_CREATED.remove(task);
            throw e;
        }
    }

    @Override
    public SimpleVersionedSerializer<KafkaWriterState> getWriterStateSerializer() {
        return sink.getWriterStateSerializer();
    }

    @Override
    public Committer<KafkaCommittable> createCommitter(CommitterInitContext context) throws IOException {
        boolean restored = context.getRestoredCheckpointId().isPresent();
        String task = taskKey(context);
        return new OrphanAbortingCommitter(sink.createCommitter(context), producerConfig, () -> restored && !WRITERS_CREATED.contains(task));
    }

    @Override
    public SimpleVersionedSerializer<KafkaCommittable> getCommittableSerializer() {
        return sink.getCommittableSerializer();
    }

    @Override
    public void addPostCommitTopology(DataStream<CommittableMessage<KafkaCommittable>> committables) {
        sink.addPostCommitTopology(committables);
    }

    @Override
    public LineageVertex getLineageVertex() {
        return sink.getLineageVertex();
    }

    /** The connector's writer, closed as it closes itself, then its admin client. */
    static final class Writer<T> implements PrecommittingStatefulSinkWriter<T, KafkaWriterState, KafkaCommittable> {
        private static volatile boolean warned;
        final PrecommittingStatefulSinkWriter<T, KafkaWriterState, KafkaCommittable> writer;
        private final String task;

        Writer(PrecommittingStatefulSinkWriter<T, KafkaWriterState, KafkaCommittable> writer, String task) {
            this.writer = writer;
            this.task = task;
        }

        @Override
        public void write(T element, Context context) throws IOException, InterruptedException {
            writer.write(element, context);
        }

        @Override
        public void writeWatermark(org.apache.flink.api.common.eventtime.Watermark watermark) throws IOException, InterruptedException {
            writer.writeWatermark(watermark);
        }

        @Override
        public void flush(boolean endOfInput) throws IOException, InterruptedException {
            writer.flush(endOfInput);
        }

        @Override
        public Collection<KafkaCommittable> prepareCommit() throws IOException, InterruptedException {
            return writer.prepareCommit();
        }

        @Override
        public List<KafkaWriterState> snapshotState(long checkpointId) throws IOException {
            return writer.snapshotState(checkpointId);
        }

        @Override
        public void close() throws Exception {
            try {
                writer.close();
            } finally {
                WRITERS_CREATED.remove(task);
                closeAdmin(writer);
            }
        }

        /** Closes the writer's admin client if it opened one; true if there was one. */
        static boolean closeAdmin(Object writer) {
            Field f = field(writer.getClass());
            if (f == null) {
                if (!warned) {
                    warned = true;
                    LOG.info("{} has no field {}: nothing to close (a connector that closes its own admin client?)", writer.getClass().getName(), FIELD);
                }
                return false;
            }
            try {
                f.setAccessible(true);
                AutoCloseable admin = (AutoCloseable) f.get(writer);
                if (admin == null) {
                    return false;
                }
                f.set(writer, null);
                if (admin instanceof org.apache.kafka.clients.admin.Admin a) {
                    a.close(Duration.ofSeconds(5));
                } else {
                    admin.close();
                }
                return true;
            } catch (Exception | LinkageError e) {
                LOG.warn("could not close the admin client of {}: {}; its thread and this job's classes stay until the TaskManager restarts",
                        writer.getClass().getName(), e.toString());
                return false;
            }
        }

        private static Field field(Class<?> c) {
            for (; c != null; c = c.getSuperclass()) {
                try {
                    return c.getDeclaredField(FIELD);
                } catch (NoSuchFieldException next) {
                    // the superclass may have it
                }
            }
            return null;
        }
    }
}
