package io.sluice.sql;

import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.kafka.common.TopicPartition;

import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Starting offsets that a test hands out only when it says so: the source's enumerator asks for them
 * before assigning any split, so the source reads nothing until {@link #release}. Lets a bounded job
 * read one input (campaign definitions) before another (events) where the job itself promises no
 * order between them. Works in a MiniCluster, which shares the test's JVM and class loader.
 */
final class HeldOffsets implements OffsetsInitializer {
    private static final long serialVersionUID = 1L;
    private static final Map<String, CountDownLatch> HELD = new ConcurrentHashMap<>();
    private static final long MAX_HOLD_MS = 120_000;

    private final String id;
    private final OffsetsInitializer offsets;

    private HeldOffsets(String id, OffsetsInitializer offsets) {
        this.id = id;
        this.offsets = offsets;
    }

    /** {@code offsets}, handed out once {@link #release}({@code id}) is called. */
    public static HeldOffsets hold(String id, OffsetsInitializer offsets) {
        HELD.put(id, new CountDownLatch(1));
        return new HeldOffsets(id, offsets);
    }

    public static void release(String id) {
        CountDownLatch latch = HELD.get(id);
        if (latch == null) {
            throw new IllegalStateException("no offsets held as " + id);
        }
        latch.countDown();
    }

    @Override
    public Map<TopicPartition, Long> getPartitionOffsets(Collection<TopicPartition> partitions, PartitionOffsetsRetriever retriever) {
        try {
            if (!HELD.get(id).await(MAX_HOLD_MS, TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("the starting offsets " + id + " were not released within " + MAX_HOLD_MS + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while holding the starting offsets " + id, e);
        }
        return offsets.getPartitionOffsets(partitions, retriever);
    }

    @Override
    public OffsetResetStrategy getAutoOffsetResetStrategy() {
        return offsets.getAutoOffsetResetStrategy();
    }
}
