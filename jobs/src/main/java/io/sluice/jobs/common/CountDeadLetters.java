package io.sluice.jobs.common;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.api.connector.sink2.Sink;

import java.util.HashMap;
import java.util.Map;

/**
 * Counts dead letters by reason on their way to the dead-letter topic: metric
 * {@code reason.<stage>.deadLetters} (stages {@code decode}, {@code validate}, {@code late};
 * the shard sinks count {@code shard-write} the same way), so a dashboard can tell a producer
 * sending garbage from a watermark set too tight.
 */
public final class CountDeadLetters extends RichMapFunction<DeadLetter, DeadLetter> {
    private static final long serialVersionUID = 1L;
    private transient ByReason counters;

    /** Counts, then writes {@code deadLetters} to {@code sink}; {@code job} names the operators' uids. */
    public static void sinkTo(DataStream<DeadLetter> deadLetters, Sink<DeadLetter> sink, String job) {
        deadLetters.map(new CountDeadLetters()).uid(job + "-count-dead-letters").name("count dead letters by reason")
                .sinkTo(sink).uid(job + "-dead-letters").name("dead letters");
    }

    @Override
    public void open(OpenContext ctx) {
        counters = new ByReason(getRuntimeContext().getMetricGroup());
    }

    @Override
    public DeadLetter map(DeadLetter d) {
        counters.inc(d.stage());
        return d;
    }

    /** {@code reason.<stage>.deadLetters} counters of one metric group, created on first use. */
    public static final class ByReason {
        private final MetricGroup group;
        private final Map<String, Counter> counters = new HashMap<>();

        public ByReason(MetricGroup group) {
            this.group = group;
        }

        public synchronized void inc(String stage) {
            counters.computeIfAbsent(stage, s -> group.addGroup("reason", s).counter("deadLetters", new SimpleCounter())).inc();
        }
    }
}
