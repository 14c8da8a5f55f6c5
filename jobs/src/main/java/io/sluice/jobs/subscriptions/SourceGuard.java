package io.sluice.jobs.subscriptions;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.jobs.common.Fatal;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Properties;

/**
 * The rule that makes a subscription row's version mean something: offsets are only compared within one
 * <em>source</em>, a (topic identity, partition count) pair that a job reads in one source epoch
 * ({@code subscriptions.source-epoch}). Every shard records the source of each epoch in {@code sluice_sources}
 * the first time a job runs it. A job whose topic no longer matches its epoch's record (partitions added,
 * the topic recreated, a mirrored cluster) stops without a restart, naming the topic, what changed and the
 * procedure, instead of comparing offsets that mean nothing and skipping updates silently. A newer epoch
 * starts a new source: its updates win over every row written in an older one (docs/operations.md).
 *
 * <p>One per validating subtask, between {@link #open} and {@link #close}. The topic is described when the
 * subtask opens, before every checkpoint (so no checkpoint ever holds offsets of a topic that was replaced),
 * every {@code kafka.partition-discovery-interval} with the shards' records, and when a record comes from a
 * partition the epoch does not have or at an offset below one already seen. A shard or broker that does not
 * answer a periodic check is checked again later, never a reason to restart. The periodic check runs on a thread of
 * its own ({@link ValidateUpdates}), the others on the task thread; Kafka's {@link Admin} client is shared by both.
 */
public final class SourceGuard implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(SourceGuard.class);

    private final SluiceConfig config;
    private final String job;
    private final String topic;
    private final int epoch;
    private transient Admin admin;
    /**
     * What this epoch was recorded with, once a shard has said so; until then, what Kafka said at open. Written by the
     * periodic check on its own thread, read by the task thread.
     */
    private transient volatile Source recorded;
    private transient volatile Source opened;

    public SourceGuard(SluiceConfig config, String job, String topic, int epoch) {
        this.config = config;
        this.job = job;
        this.topic = topic;
        this.epoch = epoch;
    }

    public int epoch() {
        return epoch;
    }

    /** The topic as Kafka describes it. */
    public record Source(String topicId, int partitions) {
    }

    /**
     * Describes the topic and reconciles it with every shard's record of this epoch (recording it where it is
     * new); returns the partition count. Throws a {@link Fatal} error (no restart) on a difference; a broker
     * that does not answer fails the subtask (its source could not read either).
     */
    public int open() {
        Properties p = KafkaClients.adminProperties(KafkaClients.clientProperties(config));
        admin = Admin.create(p);
        opened = null;
        recorded = null;
        return check(true);
    }

    /** The periodic check: topic and shards; a broker or shard that does not answer is checked again next time. */
    public int check(boolean strict) {
        Source now;
        try {
            now = describe();
        } catch (RuntimeException e) {
            if (strict) {
                throw e;
            }
            LOG.warn("could not describe topic {} to check source epoch {}; checking again later: {}", topic, epoch, e.getMessage());
            return known().partitions();
        }
        if (opened == null) {
            opened = now;
        }
        for (SluiceConfig.Shard shard : config.shards().list()) {
            try (Connection c = shard.connect("sluice-source-check")) {
                c.setNetworkTimeout(Runnable::run, 10_000); // open() runs on the task thread: a hung shard must not stall it for long
                Source r = reconcile(c, now);
                if (!r.equals(now)) {
                    throw Fatal.stop(mismatch(shard.index(), r, now));
                }
                recorded = r;
            } catch (SQLException e) {
                Fatal.rethrowIfTerminal(shard.index(), e);
                LOG.warn("could not check source epoch {} of {} on shard {}; checking again later: {}", epoch, topic, shard.index(), e.getMessage());
            }
        }
        return known().partitions(); // no shard answered yet: what Kafka said at open, until one does
    }

    private Source known() {
        return recorded != null ? recorded : opened;
    }

    /** Before a checkpoint, or after offsets went backwards: the topic alone, against what the shards recorded. */
    public void checkTopic() {
        Source known = known();
        Source now;
        try {
            now = describe();
        } catch (RuntimeException e) {
            LOG.warn("could not describe topic {} to check source epoch {}: {}", topic, epoch, e.getMessage());
            return;
        }
        if (!now.equals(known)) {
            throw Fatal.stop(mismatch(-1, known, now));
        }
    }

    /** Stops the job when {@code partition} is outside this epoch's partition count (discovery found new partitions). */
    public void checkPartition(int partition, int partitions) {
        if (partition >= partitions) {
            Source now = describe();
            throw Fatal.stop(mismatch(-1, new Source(known().topicId(), partitions), now));
        }
    }

    public void close() {
        if (admin != null) {
            admin.close(java.time.Duration.ofSeconds(5));
            admin = null;
        }
    }

    private Source describe() {
        try {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            return new Source(d.topicId().toString(), d.partitions().size());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while describing topic " + topic, e);
        } catch (Exception e) {
            throw new IllegalStateException("could not describe topic " + topic + " at " + config.kafka().bootstrap() + ": " + e.getMessage(), e);
        }
    }

    private Source reconcile(Connection c, Source now) throws SQLException {
        c.setAutoCommit(true);
        try (PreparedStatement newest = c.prepareStatement("SELECT max(epoch) FROM sluice_sources WHERE job = ? AND topic = ?")) {
            newest.setString(1, job);
            newest.setString(2, topic);
            try (ResultSet rs = newest.executeQuery()) {
                rs.next();
                int max = rs.getInt(1);
                if (!rs.wasNull() && max > epoch) {
                    throw Fatal.stop("subscriptions.source-epoch is " + epoch + " but a shard already recorded epoch " + max + " for topic " + topic
                            + " (job " + job + "): updates of an older epoch lose against every row written in a newer one."
                            + " Set subscriptions.source-epoch=" + max + " (docs/operations.md#source-epochs)");
                }
            }
        }
        try (PreparedStatement record = c.prepareStatement(
                "INSERT INTO sluice_sources (job, topic, epoch, topic_id, partitions) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")) {
            record.setString(1, job);
            record.setString(2, topic);
            record.setInt(3, epoch);
            record.setString(4, now.topicId());
            record.setInt(5, now.partitions());
            record.executeUpdate();
        }
        try (PreparedStatement read = c.prepareStatement("SELECT topic_id, partitions FROM sluice_sources WHERE job = ? AND topic = ? AND epoch = ?")) {
            read.setString(1, job);
            read.setString(2, topic);
            read.setInt(3, epoch);
            try (ResultSet rs = read.executeQuery()) {
                rs.next();
                return new Source(rs.getString(1), rs.getInt(2));
            }
        }
    }

    private String mismatch(int shard, Source recorded, Source now) {
        String where = shard < 0 ? "" : " (recorded on shard " + shard + ")";
        String change;
        String procedure;
        if (!recorded.topicId().equals(now.topicId())) {
            change = "topic " + topic + " is not the topic source epoch " + epoch + " was recorded with" + where + ": its id is " + now.topicId()
                    + ", recorded " + recorded.topicId() + " (recreated, or another cluster).";
            procedure = "docs/operations.md#recreating-or-mirroring-the-topic";
        } else {
            change = "topic " + topic + " has " + now.partitions() + " partitions, but source epoch " + epoch + " was recorded with "
                    + recorded.partitions() + where + ".";
            procedure = "docs/operations.md#adding-partitions";
        }
        return change + " Offsets of the two cannot be ordered, so job " + job + " stops instead of skipping updates."
                + " Start it again with subscriptions.source-epoch=" + (epoch + 1) + " once every producer writes to the new topic"
                + " (" + procedure + ").";
    }
}
