package io.sluice.testkit;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.setup.StackSetup;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import io.sluice.core.kafka.KafkaClients;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Reads what the pipeline has done from the systems themselves, for the local command's progress
 * lines and summary: end offsets and consumer-group lag from Kafka, and per shard the rows in each
 * table and the jobs' {@code sluice_progress} (committed count, newest committed event time).
 *
 * <p>Strict by default (tests and benchmarks): a shard that does not answer fails the probe, with the shards'
 * configured timeouts. {@link #tolerant} (the local command's progress lines): a shard that is down or hangs never
 * fails a probe; its connections give up after {@link #SHARD_TIMEOUT_S} seconds, its last answer stands in for
 * it, and {@link #shardsNotAnswering()} names it with how long it has been failing.
 */
public final class StackProbe implements AutoCloseable {
    /** Connect and socket timeout of the probe's shard connections, in seconds: a hung shard delays a progress line by about this much. */
    public static final int SHARD_TIMEOUT_S = 2;

    private final SluiceConfig config;
    private final List<SluiceConfig.Shard> shards;
    private final Admin admin;
    private final Map<Integer, Connection> connections = new HashMap<>();
    /** Per shard, its last answer to the progress query: job, topic, partition, committed offset, newest event time. */
    private final Map<Integer, List<Object[]>> lastProgress = new HashMap<>();
    /** Per shard, since when (epoch ms) it has not answered, and why; absent while it answers. */
    private final Map<Integer, long[]> failingSince = new TreeMap<>();
    private final Map<Integer, String> lastError = new HashMap<>();

    private final boolean tolerant;

    /** A strict probe: a shard that does not answer fails it. */
    public StackProbe(SluiceConfig config) {
        this(config, false);
    }

    private StackProbe(SluiceConfig config, boolean tolerant) {
        this.config = config;
        this.tolerant = tolerant;
        this.shards = !tolerant ? config.shards().list() : config.shards().list().stream().map(s -> new SluiceConfig.Shard(s.index(), s.jdbcUrl(),
                s.user(), s.password(), new SluiceConfig.Timeouts(SHARD_TIMEOUT_S * 1000L, SHARD_TIMEOUT_S * 1000L, s.timeouts().lockMs(),
                s.timeouts().idleInTransactionMs()))).toList();
        this.admin = StackSetup.admin(config);
    }

    /** A probe a shard that is down or hangs cannot fail: see the class comment. */
    public static StackProbe tolerant(SluiceConfig config) {
        return new StackProbe(config, true);
    }

    /** A shard the last probe could not read: its index, since when it has failed (epoch ms), and the error. */
    public record ShardNotAnswering(int shard, long sinceMs, String error, long newestCommittedEventAt) {
    }

    /** The shards the last probe could not read, in shard order, with the newest event time they had committed when last read. */
    public List<ShardNotAnswering> shardsNotAnswering() {
        List<ShardNotAnswering> out = new ArrayList<>();
        failingSince.forEach((shard, since) -> {
            long newest = 0;
            for (Object[] row : lastProgress.getOrDefault(shard, List.of())) {
                newest = Math.max(newest, (Long) row[4]);
            }
            out.add(new ShardNotAnswering(shard, since[0], lastError.get(shard), newest));
        });
        return out;
    }

    private void answered(int shard) {
        failingSince.remove(shard);
        lastError.remove(shard);
    }

    private void failed(int shard, SQLException e) {
        if (!tolerant) {
            throw new IllegalStateException("shard " + shard + " did not answer the probe: " + e.getMessage(), e);
        }
        failingSince.computeIfAbsent(shard, k -> new long[] {System.currentTimeMillis()});
        lastError.put(shard, e.getMessage() + (e.getSQLState() == null ? "" : " (SQLSTATE " + e.getSQLState() + ")"));
        Connection c = connections.remove(shard);
        if (c != null) {
            try {
                c.abort(Runnable::run);
            } catch (SQLException | RuntimeException ignored) {
                // replaced at the next probe
            }
        }
    }

    /**
     * Why a {@code read_committed} consumer may not see a push job: per partition the last stable offset against the
     * high watermark (an open transaction holds the first back), and the transactions the brokers hold open.
     */
    public static String pushQueueState(SluiceConfig config) {
        String topic = config.kafka().pushQueueTopic();
        try (Admin admin = Admin.create(KafkaClients.adminProperties(KafkaClients.clientProperties(config)))) {
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic).partitions()
                    .forEach(p -> latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
            var stable = admin.listOffsets(latest, new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get(10, TimeUnit.SECONDS);
            var high = admin.listOffsets(latest, new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).all().get(10, TimeUnit.SECONDS);
            List<String> held = new ArrayList<>();
            for (TopicPartition tp : latest.keySet()) {
                if (stable.get(tp).offset() < high.get(tp).offset()) {
                    held.add(tp + " stable " + stable.get(tp).offset() + " < high watermark " + high.get(tp).offset());
                }
            }
            List<String> open = new ArrayList<>();
            for (TransactionListing t : admin.listTransactions().all().get(10, TimeUnit.SECONDS)) {
                if (t.state() != TransactionState.COMPLETE_COMMIT && t.state() != TransactionState.COMPLETE_ABORT && t.state() != TransactionState.EMPTY) {
                    open.add(t.transactionalId() + " " + t.state());
                }
            }
            return "partitions held back: " + (held.isEmpty() ? "none" : held) + "; transactions not complete: " + (open.isEmpty() ? "none" : open);
        } catch (Exception e) {
            return "(the push queue's state could not be read: " + e + ")";
        }
    }

    /**
     * Every record of {@code topic} a {@code read_committed} consumer sees, up to the end offsets at
     * the call, partition by partition in offset order; fails if they cannot be read within 60 s.
     */
    public static List<ConsumerRecord<byte[], byte[]>> readCommitted(SluiceConfig config, String topic) {
        Properties p = KafkaClients.clientProperties(config);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream().map(i -> new TopicPartition(topic, i.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts);
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("could not read " + topic + " to its end offsets " + end + " within 60 s");
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            out.sort((a, b) -> a.partition() != b.partition() ? Integer.compare(a.partition(), b.partition()) : Long.compare(a.offset(), b.offset()));
            return out;
        }
    }

    /** Sum of the end offsets of {@code topic} (records ever written, for non-transactional topics). */
    public long endOffsetSum(String topic) throws Exception {
        return endOffsets(topic).values().stream().mapToLong(Long::longValue).sum();
    }

    private Map<TopicPartition, Long> endOffsets(String topic) throws Exception {
        var desc = admin.describeTopics(java.util.List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
        Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        desc.partitions().forEach(p -> request.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
        Map<TopicPartition, Long> out = new HashMap<>();
        for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : admin.listOffsets(request).all().get(10, TimeUnit.SECONDS).entrySet()) {
            out.put(e.getKey(), e.getValue().offset());
        }
        return out;
    }

    /** Records in {@code topic} that consumer group {@code group} has not committed yet (message lag). */
    public long messageLag(String group, String topic) throws Exception {
        Map<TopicPartition, Long> end = endOffsets(topic);
        Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
        long lag = 0;
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            OffsetAndMetadata c = committed.get(e.getKey());
            lag += e.getValue() - (c == null ? 0 : c.offset());
        }
        return lag;
    }

    /**
     * Per job: the committed count and the newest committed event time (epoch ms, 0 if none). The committed
     * count is derived from offsets, so replays after a restore never count twice: per source partition (of the
     * newest source epoch), the highest offset committed on any shard, plus one, summed over partitions: the
     * position up to which effects are committed, including records that became dead letters or were merged
     * into a later update (and transaction markers, for transactional producers).
     */
    public Map<String, long[]> jobProgress() {
        record SourcePartition(String job, String topic, int partition) {
        }
        Map<SourcePartition, Long> offsets = new java.util.HashMap<>();
        Map<String, long[]> out = new TreeMap<>();
        for (SluiceConfig.Shard shard : shards) {
            List<Object[]> rows = new ArrayList<>();
            try (Statement s = connection(shard).createStatement();
                 ResultSet rs = s.executeQuery("SELECT job, topic, source_partition, committed_offset, newest_event_at FROM sluice_partition_progress")) {
                while (rs.next()) {
                    Timestamp t = rs.getTimestamp(5);
                    rows.add(new Object[] {rs.getString(1), rs.getString(2), rs.getInt(3), rs.getLong(4), t == null ? 0L : t.getTime()});
                }
                lastProgress.put(shard.index(), rows);
                answered(shard.index());
            } catch (SQLException e) {
                failed(shard.index(), e);
            }
            for (Object[] row : lastProgress.getOrDefault(shard.index(), List.of())) {
                offsets.merge(new SourcePartition((String) row[0], (String) row[1], (Integer) row[2]), (Long) row[3], Math::max);
                long[] v = out.computeIfAbsent((String) row[0], k -> new long[2]);
                v[1] = Math.max(v[1], (Long) row[4]);
            }
        }
        offsets.forEach((key, offset) -> out.get(key.job())[0] += offset + 1);
        return out;
    }

    /** Per shard, in shard order: the newest event time {@code job} committed there (epoch ms; 0 if none, or if a tolerant probe's shard does not answer). */
    public long[] newestCommittedPerShard(String job) {
        long[] out = new long[shards.size()];
        for (int i = 0; i < out.length; i++) {
            try (PreparedStatement s = connection(shards.get(i)).prepareStatement("SELECT max(newest_event_at) FROM sluice_progress WHERE job = ?")) {
                s.setString(1, job);
                try (ResultSet rs = s.executeQuery()) {
                    rs.next();
                    Timestamp t = rs.getTimestamp(1);
                    out[i] = t == null ? 0 : t.getTime();
                }
                answered(shards.get(i).index());
            } catch (SQLException e) {
                failed(shards.get(i).index(), e); // tolerant: 0, not known now
            }
        }
        return out;
    }

    /** Rows per table per shard, of the shards that answer (see {@link #shardsNotAnswering()} for the others). */
    public Map<Integer, Map<String, Long>> rowCounts() {
        Map<Integer, Map<String, Long>> out = new TreeMap<>();
        for (SluiceConfig.Shard shard : shards) {
            Map<String, Long> counts = new LinkedHashMap<>();
            try {
                for (String table : new String[] {"subscriptions", "user_event_counts"}) {
                    try (Statement s = connection(shard).createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM " + table)) {
                        rs.next();
                        counts.put(table, rs.getLong(1));
                    }
                }
                answered(shard.index());
                out.put(shard.index(), counts);
            } catch (SQLException e) {
                failed(shard.index(), e);
            }
        }
        return out;
    }

    private Connection connection(SluiceConfig.Shard shard) throws SQLException {
        Connection c = connections.get(shard.index());
        if (c == null || !c.isValid(SHARD_TIMEOUT_S)) {
            if (c != null) {
                c.abort(Runnable::run);
            }
            c = shard.connect();
            connections.put(shard.index(), c);
        }
        return c;
    }

    @Override
    public void close() {
        admin.close();
        for (Connection c : connections.values()) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing anyway
            }
        }
    }
}
