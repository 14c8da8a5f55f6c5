package io.sluice.jobs.common;

import io.sluice.core.kafka.KafkaClients;
import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.connector.kafka.sink.KafkaCommittable;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The push queue's committer, with the abort FLINK-40626 (connector 5.0.0-2.2, POOLING transaction names) leaves out.
 *
 * <p>A restore commits the transactions its checkpoint lists as prepared. One of them may have been committed already
 * before the failure, its transactional id handed back to the writer's pool and reused for a newer transaction, which
 * was still open when the job failed (the records of a checkpoint that never completed). The broker then fences the
 * restored commit (with Kafka's transaction version 2 it fences every restored commit of a transaction committed before,
 * since each commit bumps the epoch), and the connector's committer logs "producer already fenced ... expected in some
 * cases" and moves on. Nobody owns the newer transaction: the restored writer keeps the id out of its own
 * lingering-transaction abort (it is listed as prepared), and nothing else aborts it. Until the broker does, at
 * {@code kafka.transaction-timeout} (10 min by default), it holds back the last stable offset of every partition it
 * wrote, so {@code read_committed} consumers see no newer push there.
 *
 * <p>So when a restored commit is fenced and a transaction is still open on its id ({@code describeTransactions}), this
 * committer starts a producer with that id, whose {@code initTransactions()} aborts the open transaction, and closes it.
 * Its records were written after the restored checkpoint, so the restored job writes them again. Why no live transaction
 * can be hit:
 * <ul>
 * <li>Restored commits run while the committer operator initializes its state: Flink's {@code CommitterOperator} commits
 *     the restored committables in {@code initializeState}, one call per restored checkpoint. This committer aborts only
 *     in calls made before the writer of its own task is created ({@code restoring}); the writer is initialized after the
 *     committer (a chain initializes from its tail), so later calls, at completed checkpoints of this attempt, never
 *     abort.</li>
 * <li>No writer of this attempt can hold the id yet (as read in the connector, 5.0.0-2.2: a connector upgrade must check
 *     it again). New ids are named only after the writer's first owned subtask, each owned subtask belongs to one
 *     writer wherever a rescale puts its state, and that writer keeps every id its restored state lists as prepared out
 *     of use until it takes a snapshot after the committer reported the commit. Snapshots come with checkpoints, and a
 *     checkpoint is triggered only when every task is running, so after every committer's restored commits.</li>
 * <li>Only committables without a live producer count: those of this attempt are handed over in the task with the
 *     writer's producer (the committer runs chained to the writer, which JobGraphTest checks).</li>
 * </ul>
 * Fenced commits after the restore (a commit later than the transaction timeout) are left as the connector handles them.
 * A second deployment with the same transactional-id prefix breaks these assumptions (its live transaction on a restored
 * id would be aborted here, and its commit then fenced): {@code deployment.id} gives each deployment its own
 * {@code push.transactional-id-prefix}, as the connector requires anyway.
 */
final class OrphanAbortingCommitter implements Committer<KafkaCommittable> {
    private static final Logger LOG = LoggerFactory.getLogger(OrphanAbortingCommitter.class);

    /** The longest each broker call of the abort may take: it runs while the task restores. */
    private static final Duration BOUND = Duration.ofSeconds(10);

    private final Committer<KafkaCommittable> committer;
    private final Properties producerConfig;
    /** True while this committer may be committing restored transactions: created at a restore, its task's writer not created yet. */
    private final BooleanSupplier restoring;

    OrphanAbortingCommitter(Committer<KafkaCommittable> committer, Properties producerConfig, BooleanSupplier restoring) {
        this.committer = committer;
        this.producerConfig = producerConfig;
        this.restoring = restoring;
    }

    @Override
    public void commit(Collection<CommitRequest<KafkaCommittable>> requests) throws IOException, InterruptedException {
        List<Watched> watched = new ArrayList<>(requests.size());
        for (CommitRequest<KafkaCommittable> r : requests) {
            watched.add(new Watched(r));
        }
        boolean restoredCommits = restoring.getAsBoolean();
        committer.commit(new ArrayList<>(watched));
        List<String> fenced = new ArrayList<>();
        for (Watched w : watched) {
            if (restoredCommits && w.fenced && w.getCommittable().getProducer().isEmpty()) {
                fenced.add(w.getCommittable().getTransactionalId());
            }
        }
        if (!fenced.isEmpty()) {
            abortOpenTransactions(fenced);
        }
    }

    /**
     * Aborts the transactions open on {@code transactionalIds} (one describe for all of them), each by fencing its id with a
     * producer of its own. Every call is bounded (a restore waits for this), and a failure leaves the transaction to the
     * brokers' timeout: late pushes, nothing lost.
     */
    private void abortOpenTransactions(List<String> transactionalIds) {
        List<String> open = new ArrayList<>();
        Properties a = new Properties();
        a.putAll(producerConfig);
        a.remove("transaction.timeout.ms"); // a producer setting
        Admin admin = Admin.create(KafkaClients.adminProperties(a));
        try {
            var described = admin.describeTransactions(transactionalIds);
            for (String id : transactionalIds) {
                if (isOpen(described.description(id), id)) {
                    open.add(id);
                } else {
                    LOG.info("push queue: the restored commit of {} was fenced (committed before the failure); no transaction is open on its id", id);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        } finally {
            admin.close(BOUND);
        }
        for (String id : open) {
            Properties p = new Properties();
            p.putAll(producerConfig);
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(BOUND.toMillis()));
            KafkaProducer<byte[], byte[]> fence = null;
            try {
                fence = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
                fence.initTransactions();
                LOG.warn("push queue: the restored commit of transaction {} was fenced: it had been committed before the failure and its id reused "
                        + "by a newer transaction that nobody owns now (FLINK-40626). Aborted that transaction, so read_committed consumers are not "
                        + "held back until kafka.transaction-timeout; the restored job writes its records again", id);
            } catch (org.apache.kafka.common.errors.InterruptException e) {
                Thread.currentThread().interrupt(); // the task is being cancelled
                return;
            } catch (RuntimeException e) {
                LOG.warn("push queue: could not abort the orphaned transaction {} ({}); read_committed consumers of its partitions wait until the "
                        + "brokers abort it at kafka.transaction-timeout", id, e.toString());
            } finally {
                if (fence != null) {
                    fence.close(BOUND);
                }
            }
        }
    }

    /** Whether the coordinator has a transaction open (ongoing, or being ended) on the id; false if it cannot tell within {@link #BOUND}. */
    private static boolean isOpen(org.apache.kafka.common.KafkaFuture<TransactionDescription> description, String id) throws InterruptedException {
        try {
            TransactionState state = description.get(BOUND.toMillis(), TimeUnit.MILLISECONDS).state();
            return state == TransactionState.ONGOING || state == TransactionState.PREPARE_ABORT || state == TransactionState.PREPARE_COMMIT;
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            if (!(e.getCause() instanceof org.apache.kafka.common.errors.TransactionalIdNotFoundException)) {
                LOG.warn("push queue: could not tell whether a transaction is open on {} ({}); if one is, read_committed consumers of its "
                        + "partitions wait until the brokers abort it at kafka.transaction-timeout", id, e.toString());
            }
            return false;
        }
    }

    @Override
    public void close() throws Exception {
        committer.close();
    }

    /** A request passed on unchanged, remembering whether the committer reported it fenced. */
    private static final class Watched implements CommitRequest<KafkaCommittable> {
        private final CommitRequest<KafkaCommittable> request;
        private boolean fenced;

        Watched(CommitRequest<KafkaCommittable> request) {
            this.request = request;
        }

        @Override
        public KafkaCommittable getCommittable() {
            return request.getCommittable();
        }

        @Override
        public int getNumberOfRetries() {
            return request.getNumberOfRetries();
        }

        @Override
        public void signalFailedWithKnownReason(Throwable t) {
            fenced |= t instanceof ProducerFencedException;
            request.signalFailedWithKnownReason(t);
        }

        @Override
        public void signalFailedWithUnknownReason(Throwable t) {
            request.signalFailedWithUnknownReason(t);
        }

        @Override
        public void retryLater() {
            request.retryLater();
        }

        @Override
        public void updateAndRetryLater(KafkaCommittable committable) {
            request.updateAndRetryLater(committable);
        }

        @Override
        public void signalAlreadyCommitted() {
            request.signalAlreadyCommitted();
        }

        @Override
        public String toString() { // the connector's log lines name the request
            return request.toString();
        }
    }
}
