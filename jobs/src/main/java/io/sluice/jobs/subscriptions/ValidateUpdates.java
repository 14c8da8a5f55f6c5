package io.sluice.jobs.subscriptions;

import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * In: decoded updates or decode failures. Out: one single-update {@link SubscriptionDelta} per valid
 * update (version = its Kafka offset); to {@link DeadLetter#SIDE_OUTPUT}: decode failures, and updates with a
 * missing id or a property key/value over the configured byte limits (stage {@code validate}, the
 * reason naming the field and the limit). Counts dead letters in {@code deadLetters}.
 */
public class ValidateUpdates extends ProcessFunction<Decoded<SubscriptionUpdate>, SubscriptionDelta> {
    private final String topic;
    private final int maxKeyBytes;
    private final int maxValueBytes;
    private transient Counter deadLetters;

    public ValidateUpdates(String topic, int maxKeyBytes, int maxValueBytes) {
        this.topic = topic;
        this.maxKeyBytes = maxKeyBytes;
        this.maxValueBytes = maxValueBytes;
    }

    @Override
    public void open(org.apache.flink.api.common.functions.OpenContext ctx) {
        deadLetters = getRuntimeContext().getMetricGroup().counter("deadLetters");
    }

    @Override
    public void processElement(Decoded<SubscriptionUpdate> in, Context ctx, Collector<SubscriptionDelta> out) {
        if (in.deadLetter != null) {
            deadLetters.inc();
            ctx.output(DeadLetter.SIDE_OUTPUT, in.deadLetter);
            return;
        }
        String problem = problem(in.value);
        if (problem != null) {
            deadLetters.inc();
            ctx.output(DeadLetter.SIDE_OUTPUT, new DeadLetter(topic, in.partition, in.offset, in.key, in.raw, "validate", problem));
            return;
        }
        out.collect(SubscriptionDelta.of(in.value, in.partition, in.offset));
    }

    String problem(SubscriptionUpdate u) {
        if (u.appId() == null || u.appId().isBlank()) {
            return "missing app_id";
        }
        if (u.subscriptionId() == null || u.subscriptionId().isBlank()) {
            return "missing subscription_id";
        }
        for (Map.Entry<String, String> e : u.set().entrySet()) {
            int k = bytes(e.getKey());
            if (k > maxKeyBytes) {
                return "set key of " + k + " bytes is over subscriptions.max-key-bytes=" + maxKeyBytes;
            }
            int v = bytes(e.getValue());
            if (v > maxValueBytes) {
                return "value of set." + e.getKey() + " is " + v + " bytes, over subscriptions.max-value-bytes=" + maxValueBytes;
            }
        }
        for (String k : u.unset()) {
            if (bytes(k) > maxKeyBytes) {
                return "unset key of " + bytes(k) + " bytes is over subscriptions.max-key-bytes=" + maxKeyBytes;
            }
        }
        return null;
    }

    private static int bytes(String s) {
        return s == null ? 0 : s.getBytes(StandardCharsets.UTF_8).length;
    }
}
