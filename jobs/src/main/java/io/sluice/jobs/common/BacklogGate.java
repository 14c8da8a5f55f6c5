package io.sluice.jobs.common;

import org.apache.flink.metrics.Gauge;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Serializable;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * Whether one source subtask has read all it can, shared by its reader ({@link BacklogAwareSource}) and its splits'
 * watermark generators ({@link BacklogAwareIdleness}). It knows three things:
 * <ul>
 *   <li>which of the reader's splits had records to read from where they started ({@link StartBacklogProbe}), unknown
 *       until the probe answers;</li>
 *   <li>which splits have delivered a record since the reader started;</li>
 *   <li>the reader's {@code pendingRecords} gauge: the Kafka consumer's {@code records-lag} (last stable offset minus fetch
 *       position) summed over the partitions it has fetched records of.</li>
 * </ul>
 * The subtask has nothing left to read once every split that had records at the start has delivered and the gauge
 * reads 0. One instance goes into the job graph with both the source and the watermark strategy; each subtask
 * deserializes the source operator's factory, which holds both, in one piece, so it gets one gate of its own shared
 * by the two.
 */
public final class BacklogGate implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(BacklogGate.class);
    /**
     * The longest the start's backlog holds silent partitions: a split with records to read that delivers none in this
     * long (its records deleted by retention meanwhile, or a probe that never answers) stops holding them, with a warning.
     */
    static final Duration MAX_START_HOLD = Duration.ofMinutes(5);

    private final Set<String> delivered = ConcurrentHashMap.newKeySet();
    private transient volatile Gauge<Long> pending;
    /** The splits that had records to read from where they started; null until known. */
    private transient volatile Set<String> backlogAtStart;
    /** When the start's hold began: the last split assignment, or the probe's answer. */
    private transient volatile long heldSince;
    private transient volatile boolean released;
    /** Nanoseconds, for tests; {@link System#nanoTime} when null (as after deserialization). */
    private final transient LongSupplier clock;

    public BacklogGate() {
        this(null);
    }

    BacklogGate(LongSupplier clock) {
        this.clock = clock;
    }

    private long now() {
        return clock == null ? System.nanoTime() : clock.getAsLong();
    }

    void pendingRecords(Gauge<Long> gauge) {
        pending = gauge;
    }

    void backlogAtStart(Set<String> splits) {
        backlogAtStart = splits;
        heldSince = now();
        released = false;
    }

    void delivered(String split) {
        delivered.add(split);
    }

    /**
     * Whether a silent partition may go idle: every split that had records to read at the start has delivered, and the
     * consumer reports nothing pending. While the start is being probed (or cannot be: the broker does not answer), no;
     * after {@link #MAX_START_HOLD} of either, the start no longer counts.
     */
    public boolean idleAllowed() {
        Set<String> start = backlogAtStart;
        if (start == null || !delivered.containsAll(start)) {
            long since = heldSince;
            if (since == 0) { // not set yet: nothing has been assigned to the reader so far
                heldSince = since = now();
            }
            if (now() - since < MAX_START_HOLD.toNanos()) {
                return false;
            }
            if (!released) {
                released = true;
                if (start == null) {
                    LOG.warn("The start-backlog probe has not answered in {}: silent partitions of this subtask no longer wait for it "
                            + "(see docs/aggregation.md, \"Event time and lateness\")", MAX_START_HOLD);
                } else {
                    LOG.warn("Splits {} had records to read at the start and delivered none in {}: their partitions no longer hold the "
                            + "watermark (deleted by retention meanwhile? see docs/aggregation.md, \"Event time and lateness\")",
                            notDelivered(start), MAX_START_HOLD);
                }
            }
        }
        Gauge<Long> g = pending;
        Long v = g == null ? null : g.getValue();
        return v == null || v <= 0;
    }

    private Set<String> notDelivered(Set<String> start) {
        Set<String> missing = new java.util.TreeSet<>(start);
        missing.removeAll(delivered);
        return missing;
    }
}
