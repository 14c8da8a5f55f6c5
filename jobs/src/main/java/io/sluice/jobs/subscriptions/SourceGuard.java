package io.sluice.jobs.subscriptions;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.jobs.common.Fatal;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;

/**
 * The rule that makes a subscription row's version mean something: offsets are only compared within one
 * <em>source</em>, a (topic identity, partition count) pair that a job reads in one source epoch
 * ({@code subscriptions.source-epoch}). Every shard records the source of each epoch in {@code sluice_sources}
 * the first time a job runs it. A job whose topic no longer matches its epoch's record (partitions added,
 * the topic recreated, a mirrored cluster) stops without a restart, naming the topic, what changed and the
 * procedure, instead of comparing offsets that mean nothing and skipping updates silently. A newer epoch
 * starts a new source: its updates win over every row written in an older one (docs/operations.md).
 *
 * <p>Checked when each validating subtask opens (every start and restore), when a record arrives from a
 * partition the epoch does not have, and every {@code kafka.partition-discovery-interval} while records flow.
 */
public final class SourceGuard implements Serializable {
    private static final long serialVersionUID = 1L;

    private final SluiceConfig config;
    private final String job;
    private final String topic;
    private final int epoch;

    public SourceGuard(SluiceConfig config, String job, String topic, int epoch) {
        this.config = config;
        this.job = job;
        this.topic = topic;
        this.epoch = epoch;
    }

    public int epoch() {
        return epoch;
    }

    /** The topic as Kafka describes it now. */
    public record Source(String topicId, int partitions) {
    }

    /**
     * Records this epoch's source on every shard where it is new, and returns its partition count; throws a
     * {@link Fatal} error (no restart) when the topic differs from what a shard recorded for this epoch, or a
     * shard has seen a newer epoch.
     */
    public int check() {
        Source now = describe();
        for (SluiceConfig.Shard shard : config.shards().list()) {
            try (Connection c = shard.connect()) {
                Source recorded = reconcile(c, now);
                if (!recorded.equals(now)) {
                    throw Fatal.stop(mismatch(shard.index(), recorded, now));
                }
            } catch (SQLException e) {
                throw Fatal.ifTerminal(shard.index(), e).<RuntimeException>map(x -> x).orElseGet(() -> new IllegalStateException(
                        "could not check the source of " + topic + " on shard " + shard.index() + ": " + e.getMessage(), e));
            }
        }
        return now.partitions();
    }

    /** Stops the job when {@code partition} is outside this epoch's partition count (discovery found new partitions). */
    public void checkPartition(int partition, int partitions) {
        if (partition >= partitions) {
            Source now = describe();
            throw Fatal.stop(mismatch(-1, new Source("(as recorded)", partitions), now));
        }
    }

    private Source describe() {
        try (Admin admin = Admin.create(KafkaClients.clientProperties(config))) {
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
        if (!recorded.topicId().equals(now.topicId()) && shard >= 0) {
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
