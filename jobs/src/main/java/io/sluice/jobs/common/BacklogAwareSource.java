package io.sluice.jobs.common;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.watermark.Watermark;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.SourceEvent;
import org.apache.flink.api.connector.source.SourceOutput;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplit;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.events.EventBuilder;
import org.apache.flink.metrics.CharacterFilter;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.Meter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.groups.OperatorIOMetricGroup;
import org.apache.flink.metrics.groups.SourceReaderMetricGroup;
import org.apache.flink.traces.SpanBuilder;
import org.apache.flink.util.UserCodeClassLoader;

import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * A source that tells its subtask's watermark generators whether the reader is behind: it hands the reader's
 * {@code pendingRecords} gauge (which the Kafka source reader sets from its consumer's {@code records-lag}) to a
 * {@link BacklogGate}, which {@link BacklogAwareIdleness} reads, with which splits had records to read at the start
 * ({@link StartBacklogProbe}) and which have delivered since. Everything else is the wrapped source's: its splits, enumerator,
 * checkpoint formats and reader (only the reader's context is wrapped), so savepoints of a job reading the plain source
 * restore into one reading this, and the other way round ({@link ForwardingSource}).
 */
public final class BacklogAwareSource<T, E> extends ForwardingSource<T, KafkaPartitionSplit, E> implements ResultTypeQueryable<T> {
    private static final long serialVersionUID = 1L;

    private static final Logger LOG = LoggerFactory.getLogger(BacklogAwareSource.class);
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(30);

    private final TypeInformation<T> type;
    private final Properties client;
    private final String groupId;
    private final boolean resetToLatest;
    private final BacklogGate gate = new BacklogGate();

    /**
     * {@code source}, started from {@code starting}, read with consumer settings {@code client} (the bootstrap servers and
     * security) by group {@code groupId}.
     */
    public static <T, E, W extends Source<T, KafkaPartitionSplit, E> & ResultTypeQueryable<T>> BacklogAwareSource<T, E> of(
            W source, OffsetsInitializer starting, Properties client, String groupId) {
        return new BacklogAwareSource<>(source, source.getProducedType(), client, groupId,
                starting.getAutoOffsetResetStrategy() == OffsetResetStrategy.LATEST);
    }

    private BacklogAwareSource(Source<T, KafkaPartitionSplit, E> source, TypeInformation<T> type, Properties client, String groupId,
                               boolean resetToLatest) {
        super(source);
        this.type = type;
        this.client = client;
        this.groupId = groupId;
        this.resetToLatest = resetToLatest;
    }

    /** The gate to give this source's watermark strategy ({@link BacklogAwareIdleness}); it must go into the same job graph. */
    public BacklogGate gate() {
        return gate;
    }

    @Override
    public SourceReader<T, KafkaPartitionSplit> createReader(SourceReaderContext context) throws Exception {
        return new Reader<>(source.createReader(new Context(context, gate)), this, context.getIndexOfSubtask());
    }

    @Override
    public TypeInformation<T> getProducedType() {
        return type;
    }

    /** The reader's context, whose metric group passes the pending-records gauge to the gate as well. */
    private record Context(SourceReaderContext context, BacklogGate gate) implements SourceReaderContext {
        @Override
        public SourceReaderMetricGroup metricGroup() {
            return new Metrics(context.metricGroup(), gate);
        }

        @Override
        public Configuration getConfiguration() {
            return context.getConfiguration();
        }

        @Override
        public String getLocalHostName() {
            return context.getLocalHostName();
        }

        @Override
        public int getIndexOfSubtask() {
            return context.getIndexOfSubtask();
        }

        @Override
        public void sendSplitRequest() {
            context.sendSplitRequest();
        }

        @Override
        public void sendSourceEventToCoordinator(SourceEvent event) {
            context.sendSourceEventToCoordinator(event);
        }

        @Override
        public UserCodeClassLoader getUserCodeClassLoader() {
            return context.getUserCodeClassLoader();
        }

        @Override
        public int currentParallelism() {
            return context.currentParallelism();
        }

        @Override
        public void emitWatermark(Watermark watermark) {
            context.emitWatermark(watermark);
        }
    }

    private record Metrics(SourceReaderMetricGroup group, BacklogGate gate) implements SourceReaderMetricGroup {
        @Override
        public void setPendingRecordsGauge(Gauge<Long> gauge) {
            gate.pendingRecords(gauge);
            group.setPendingRecordsGauge(gauge);
        }

        @Override
        public void setPendingBytesGauge(Gauge<Long> gauge) {
            group.setPendingBytesGauge(gauge);
        }

        @Override
        public Counter getNumRecordsInErrorsCounter() {
            return group.getNumRecordsInErrorsCounter();
        }

        @Override
        public OperatorIOMetricGroup getIOMetricGroup() {
            return group.getIOMetricGroup();
        }

        @Override
        public void addSpan(SpanBuilder span) {
            group.addSpan(span);
        }

        @Override
        public void addEvent(EventBuilder event) {
            group.addEvent(event);
        }

        @Override
        public Counter counter(String name) {
            return group.counter(name);
        }

        @Override
        public <C extends Counter> C counter(String name, C counter) {
            return group.counter(name, counter);
        }

        @Override
        public <V, G extends Gauge<V>> G gauge(String name, G gauge) {
            return group.gauge(name, gauge);
        }

        @Override
        public <H extends Histogram> H histogram(String name, H histogram) {
            return group.histogram(name, histogram);
        }

        @Override
        public <M extends Meter> M meter(String name, M meter) {
            return group.meter(name, meter);
        }

        @Override
        public MetricGroup addGroup(String name) {
            return group.addGroup(name);
        }

        @Override
        public MetricGroup addGroup(String key, String value) {
            return group.addGroup(key, value);
        }

        @Override
        public String[] getScopeComponents() {
            return group.getScopeComponents();
        }

        @Override
        public Map<String, String> getAllVariables() {
            return group.getAllVariables();
        }

        @Override
        public String getMetricIdentifier(String metricName) {
            return group.getMetricIdentifier(metricName);
        }

        @Override
        public String getMetricIdentifier(String metricName, CharacterFilter filter) {
            return group.getMetricIdentifier(metricName, filter);
        }
    }

    /**
     * The wrapped reader. On every split assignment it has the {@link StartBacklogProbe} find out, on a thread of its
     * own, which of its splits hold records to read from where they start, retrying until the broker answers; it tells
     * the gate each split's first record through the outputs it hands the Kafka reader. A reader without splits has
     * nothing to read.
     */
    private static final class Reader<T> extends ForwardingSource.Reader<T, KafkaPartitionSplit> {
        private final BacklogAwareSource<T, ?> source;
        private final int subtask;
        private final List<KafkaPartitionSplit> splits = new ArrayList<>();
        /** The probe whose answer counts; the older ones are interrupted and their answers dropped. */
        private volatile Thread probe;
        private volatile boolean closed;
        private ReaderOutput<T> output;
        private Outputs<T> outputs;

        Reader(SourceReader<T, KafkaPartitionSplit> reader, BacklogAwareSource<T, ?> source, int subtask) {
            super(reader);
            this.source = source;
            this.subtask = subtask;
        }

        @Override
        public void start() {
            reader.start();
            synchronized (source.gate) {
                if (splits.isEmpty()) {
                    source.gate.backlogAtStart(Set.of());
                }
            }
        }

        @Override
        public InputStatus pollNext(ReaderOutput<T> output) throws Exception {
            if (output != this.output) {
                this.output = output;
                this.outputs = new Outputs<>(output, source.gate);
            }
            return reader.pollNext(outputs);
        }

        @Override
        public void addSplits(List<KafkaPartitionSplit> added) {
            splits.addAll(added);
            reader.addSplits(added);
            probe(List.copyOf(splits));
        }

        private void probe(List<KafkaPartitionSplit> all) {
            BacklogGate gate = source.gate;
            Thread next = new Thread(() -> {
                for (int attempt = 1; !closed && probe == Thread.currentThread() && !Thread.currentThread().isInterrupted(); attempt++) {
                    try {
                        Set<String> backlog = StartBacklogProbe.splitsWithRecordsToRead(source.client, source.groupId,
                                source.groupId + "-start-backlog-probe-" + subtask, all, source.resetToLatest, PROBE_TIMEOUT);
                        synchronized (gate) {
                            if (probe == Thread.currentThread()) {
                                gate.backlogAtStart(backlog);
                                LOG.info("Source subtask {}: records to read from where they start in {} of {}; until each has delivered, "
                                        + "its silent partitions hold the watermark", subtask, backlog, all);
                            }
                        }
                        return;
                    } catch (org.apache.kafka.common.errors.InterruptException e) {
                        return;
                    } catch (RuntimeException | LinkageError e) {
                        if (closed) {
                            return;
                        }
                        LOG.warn("Source subtask {}: could not find out whether {} hold records to read (attempt {}), so its silent partitions hold "
                                + "the watermark; trying again in 1 s", subtask, all, attempt, e);
                        try {
                            Thread.sleep(1_000);
                        } catch (InterruptedException interrupted) {
                            return;
                        }
                    }
                }
            }, "sluice-start-backlog-probe-" + subtask);
            next.setDaemon(true);
            next.setContextClassLoader(Thread.currentThread().getContextClassLoader());
            synchronized (gate) {
                if (probe != null) {
                    probe.interrupt();
                }
                probe = next;
                gate.backlogAtStart(null);
            }
            next.start();
        }

        @Override
        public void close() throws Exception {
            closed = true;
            Thread last = probe;
            if (last != null) {
                last.interrupt();
            }
            reader.close();
        }
    }

    /** An output that passes everything to {@code output}. */
    private abstract static class Forwarding<T, O extends SourceOutput<T>> implements SourceOutput<T> {
        protected final O output;

        Forwarding(O output) {
            this.output = output;
        }

        @Override
        public void collect(T record) {
            output.collect(record);
        }

        @Override
        public void collect(T record, long timestamp) {
            output.collect(record, timestamp);
        }

        @Override
        public void emitWatermark(org.apache.flink.api.common.eventtime.Watermark watermark) {
            output.emitWatermark(watermark);
        }

        @Override
        public void markIdle() {
            output.markIdle();
        }

        @Override
        public void markActive() {
            output.markActive();
        }
    }

    /** The reader's output, whose split outputs tell the gate each split's first record. */
    private static final class Outputs<T> extends Forwarding<T, ReaderOutput<T>> implements ReaderOutput<T> {
        private final BacklogGate gate;

        Outputs(ReaderOutput<T> output, BacklogGate gate) {
            super(output);
            this.gate = gate;
        }

        @Override
        public SourceOutput<T> createOutputForSplit(String splitId) {
            return new FirstRecordOutput<>(output.createOutputForSplit(splitId), splitId, gate);
        }

        @Override
        public void releaseOutputForSplit(String splitId) {
            output.releaseOutputForSplit(splitId);
        }
    }

    /** A split's output that tells the gate its first record. */
    private static final class FirstRecordOutput<T> extends Forwarding<T, SourceOutput<T>> {
        private final String split;
        private final BacklogGate gate;
        private boolean delivered;

        FirstRecordOutput(SourceOutput<T> output, String split, BacklogGate gate) {
            super(output);
            this.split = split;
            this.gate = gate;
        }

        @Override
        public void collect(T record) {
            first();
            output.collect(record);
        }

        @Override
        public void collect(T record, long timestamp) {
            first();
            output.collect(record, timestamp);
        }

        private void first() {
            if (!delivered) {
                delivered = true;
                gate.delivered(split);
            }
        }
    }
}
