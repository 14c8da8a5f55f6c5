package io.sluice.jobs.common;

import org.apache.flink.metrics.Gauge;

import java.io.Serializable;

/**
 * Whether one source subtask has read all it can, shared by its reader ({@link BacklogAwareSource}) and its splits'
 * watermark generators ({@link BacklogAwareIdleness}). The reader hands over its {@code pendingRecords} gauge: the Kafka
 * consumer's {@code records-lag} summed over the subtask's partitions (the last stable offset minus the fetch position,
 * as of each partition's latest fetch). One instance goes into the job graph with both the source and the watermark
 * strategy; each subtask deserializes the source operator with both in one piece, so it gets one gate of its own,
 * shared by the two. Until the reader registers the gauge (it does with its first record), a {@link StartBacklogProbe}
 * tells whether there is anything to read at all.
 */
public final class BacklogGate implements Serializable {
    private static final long serialVersionUID = 1L;

    private transient volatile Gauge<Long> pending;
    /** Before the gauge: whether the reader's partitions hold records from where it started; null until known. */
    private transient volatile Boolean backlogAtStart;

    void pendingRecords(Gauge<Long> gauge) {
        pending = gauge;
    }

    void backlogAtStart(Boolean backlog) {
        backlogAtStart = backlog;
    }

    /**
     * Whether a silent partition may go idle: the reader's consumer reports nothing pending or, before the reader has
     * delivered its first record (no gauge yet), its partitions were found to hold nothing to read from where it started.
     * While that is being found out (or cannot be: the broker does not answer), no.
     */
    public boolean idleAllowed() {
        Gauge<Long> g = pending;
        if (g == null) {
            return Boolean.FALSE.equals(backlogAtStart);
        }
        Long v = g.getValue();
        return v == null || v <= 0;
    }

    /** Whether the reader has delivered a record (and handed over its gauge). */
    boolean delivered() {
        return pending != null;
    }
}
