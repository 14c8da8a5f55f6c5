package io.sluice.jobs.common;

import org.apache.flink.metrics.Gauge;

import java.io.Serializable;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

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

    private final Set<String> delivered = ConcurrentHashMap.newKeySet();
    private transient volatile Gauge<Long> pending;
    /** The splits that had records to read from where they started; null until known. */
    private transient volatile Set<String> backlogAtStart;

    void pendingRecords(Gauge<Long> gauge) {
        pending = gauge;
    }

    void backlogAtStart(Set<String> splits) {
        backlogAtStart = splits;
    }

    void delivered(String split) {
        delivered.add(split);
    }

    /**
     * Whether a silent partition may go idle: every split that had records to read at the start has delivered, and the
     * consumer reports nothing pending. While the start is being probed (or cannot be: the broker does not answer), no.
     */
    public boolean idleAllowed() {
        Set<String> start = backlogAtStart;
        if (start == null || !delivered.containsAll(start)) {
            return false;
        }
        Gauge<Long> g = pending;
        Long v = g == null ? null : g.getValue();
        return v == null || v <= 0;
    }
}
