package io.sluice.jobs.common;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.kafka.KafkaClients;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

import java.io.Serializable;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * Refuses a start without state (no checkpoint, no savepoint) where the job's consumer group already has
 * committed offsets: the sources would resume from those offsets, but the state that went with them
 * (window counts, "sent" marks, pacer queues) would be gone, and pushes already sent would go out again.
 * That happens after lost checkpoints, a job submitted again instead of restored, or docker-compose's
 * {@code setup} run a second time. Decided when operator state is initialized, on the task (never in
 * {@code main()}, which application mode runs again on a JobManager failover), and a refusal stops the
 * job without a restart loop. {@code allowKey} set to true lets such a start through.
 */
public final class StatelessStartGuard implements Serializable {
    private static final long serialVersionUID = 1L;

    private final SluiceConfig config;
    private final String job;
    private final String topic;
    private final boolean allowed;
    private final String allowKey;
    private final String lost;

    /** {@code lost}: what a stateless start loses, for the message. */
    public StatelessStartGuard(SluiceConfig config, String job, String topic, boolean allowed, String allowKey, String lost) {
        this.config = config;
        this.job = job;
        this.topic = topic;
        this.allowed = allowed;
        this.allowKey = allowKey;
        this.lost = lost;
    }

    /** Call from {@code initializeState}; {@code restored}: the context's {@code isRestored()}. */
    public void check(boolean restored) throws Exception {
        if (restored || allowed) {
            return;
        }
        String group = KafkaClients.groupId(config, job);
        Properties p = KafkaClients.adminProperties(KafkaClients.clientProperties(config));
        Map<TopicPartition, OffsetAndMetadata> committed;
        try (Admin admin = Admin.create(p)) {
            committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(15, TimeUnit.SECONDS);
        }
        long partitions = committed.entrySet().stream().filter(e -> e.getKey().topic().equals(topic) && e.getValue() != null).count();
        if (partitions > 0) {
            throw Fatal.stop("the " + job + " job starts without a checkpoint or savepoint, but its consumer group " + group + " has committed offsets for "
                    + partitions + " partitions of " + topic + ": it would resume there with empty state, and " + lost + ". Restore from the latest "
                    + "checkpoint or savepoint (flink run -s <path>, ./sluice cluster submit --from-savepoint <path>), or, to start over on purpose, "
                    + "set " + allowKey + ": true (or give this deployment a new deployment.id or kafka.group-prefix)");
        }
    }
}
