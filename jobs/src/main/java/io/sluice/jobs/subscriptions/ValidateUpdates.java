package io.sluice.jobs.subscriptions;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.jobs.common.ClassLoaderRelease;
import io.sluice.jobs.common.DeadLetter;
import io.sluice.jobs.common.Decoded;
import io.sluice.jobs.common.StatelessStartGuard;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * In: decoded updates or decode failures. Out: one single-update {@link SubscriptionDelta} per valid
 * update (its source epoch and partition, version = its Kafka offset); to {@link DeadLetter#SIDE_OUTPUT}:
 * decode failures, and, with their original bytes, updates a shard would refuse on their own (checked
 * here, before any merging, so one bad update never takes good ones with it): a missing id, an id over
 * {@code subscriptions.max-id-bytes}, a property key or value over its byte limit, a NUL character in any
 * of them (Postgres text and jsonb cannot hold it), a {@code sent_at} outside years 1..9999 (stage
 * {@code validate}, the reason naming the field and the limit). Counts dead letters in {@code deadLetters}.
 *
 * <p>With a {@link SourceGuard} (the job always has one), it checks the topic against the source epoch
 * when it opens, before every checkpoint, every {@code kafka.partition-discovery-interval}, when a record
 * comes from a partition the epoch does not have (it stops the job) and when a partition's offsets go
 * backwards (a recreated topic the consumer reset to its start). It keeps no state, but refuses a start without
 * state where the job's consumer group has committed offsets ({@link StatelessStartGuard}): the sink's state holds
 * the updates a shard had not committed at the last checkpoint, and the group's offsets are already past them.
 */
public class ValidateUpdates extends ProcessFunction<Decoded<SubscriptionUpdate>, SubscriptionDelta> implements CheckpointedFunction {
    /** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in epoch milliseconds: the years every client and Postgres agree on. */
    static final long MIN_SENT_AT = -62_135_596_800_000L;
    static final long MAX_SENT_AT = 253_402_300_799_999L;

    private final String topic;
    private final int maxKeyBytes;
    private final int maxValueBytes;
    private final int maxIdBytes;
    private final int epoch;
    private final SourceGuard guard;
    private final long checkEveryMs;
    private final StatelessStartGuard statelessStart;
    private transient Counter deadLetters;
    private transient int partitions;
    private transient long nextCheckAt;
    /** The periodic check's thread (started at the first check) and the check in flight, if any. */
    private transient ExecutorService checker;
    private transient Future<Integer> checking;
    /** The newest offset seen per partition since this subtask opened (-1: none), indexed by partition. */
    private transient long[] newestOffset;

    /**
     * Limits from {@code s}; {@code guard} may be null only in tests of the validation alone (epoch 0, no topic checks);
     * {@code statelessStart}: checked when the state is initialized, by every subtask; null checks nothing.
     */
    public ValidateUpdates(String topic, SluiceConfig.Subscriptions s, SourceGuard guard, long checkEveryMs, StatelessStartGuard statelessStart) {
        this(topic, s.maxKeyBytes(), s.maxValueBytes(), s.maxIdBytes(), guard, checkEveryMs, statelessStart);
    }

    ValidateUpdates(String topic, int maxKeyBytes, int maxValueBytes, int maxIdBytes, SourceGuard guard, long checkEveryMs,
                    StatelessStartGuard statelessStart) {
        this.topic = topic;
        this.maxKeyBytes = maxKeyBytes;
        this.maxValueBytes = maxValueBytes;
        this.maxIdBytes = maxIdBytes;
        this.guard = guard;
        this.epoch = guard == null ? 0 : guard.epoch();
        this.checkEveryMs = checkEveryMs;
        this.statelessStart = statelessStart;
    }

    @Override
    public void open(org.apache.flink.api.common.functions.OpenContext ctx) {
        deadLetters = getRuntimeContext().getMetricGroup().counter("deadLetters");
        ClassLoaderRelease.deregisterDriversOnRelease(getRuntimeContext()::registerUserCodeClassLoaderReleaseHookIfAbsent);
        partitions = guard == null ? Integer.MAX_VALUE : guard.open();
        nextCheckAt = System.currentTimeMillis() + checkEveryMs;
        newestOffset = new long[guard == null ? 0 : partitions];
        Arrays.fill(newestOffset, -1);
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) {
        if (guard != null) {
            guard.checkTopic(); // no checkpoint holds offsets of a replaced topic
            if (checking != null && checking.isDone()) {
                applyCheck(); // nor one taken after a periodic check found a difference
            }
        }
    }

    /**
     * Every {@code checkEveryMs} the guard checks the topic and the shards on a thread of its own, so a shard that hangs
     * (its connect or login waits up to {@code shards.connect-timeout}) never holds up the records of apps on the other
     * shards; its result is applied on the task thread, at the first record or checkpoint after it is known.
     */
    private void periodicCheck() {
        if (checking != null) {
            if (checking.isDone()) {
                applyCheck();
            }
            return;
        }
        if (System.currentTimeMillis() >= nextCheckAt) {
            if (checker == null) {
                checker = Executors.newSingleThreadExecutor(r -> {
                    Thread t = new Thread(r, "sluice-source-check " + topic);
                    t.setDaemon(true);
                    return t;
                });
            }
            checking = checker.submit(() -> guard.check(false));
        }
    }

    /** The finished periodic check: the partition count it found, or its {@link io.sluice.jobs.common.Fatal} stop, on the task thread. */
    private void applyCheck() {
        int now;
        try {
            now = checking.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading the source check of " + topic, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException("the source check of " + topic + " failed", e.getCause());
        } finally {
            checking = null;
            nextCheckAt = System.currentTimeMillis() + checkEveryMs;
        }
        if (now != partitions) {
            newestOffset = Arrays.copyOf(newestOffset, now);
            Arrays.fill(newestOffset, Math.min(partitions, now), now, -1);
            partitions = now;
        }
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        // no state of its own: the checks are against the shards' records and the topic. Every subtask asks, before it
        // passes on its first record: were only one to ask, the others could write newer deltas of keys whose older ones
        // the refused start's rightful checkpoint holds, and the version guard would then drop those on its restore
        if (statelessStart != null) {
            statelessStart.check(context.isRestored());
        }
    }

    @Override
    public void close() throws Exception {
        if (checker != null) {
            // not waited for: a check waiting to log in is interrupted (pgjdbc closes that connection once it is made), one in
            // a statement ends within its 10 s network timeout; either holds this job's class loader until then
            checker.shutdownNow();
            checker = null;
        }
        if (guard != null) {
            guard.close();
        }
        super.close();
    }

    @Override
    public void processElement(Decoded<SubscriptionUpdate> in, Context ctx, Collector<SubscriptionDelta> out) {
        if (guard != null) {
            int partition = in.deadLetter != null ? in.deadLetter.partition() : in.partition;
            long offset = in.deadLetter != null ? in.deadLetter.offset() : in.offset;
            guard.checkPartition(partition, partitions); // so partition < newestOffset.length
            long before = newestOffset[partition];
            newestOffset[partition] = offset;
            if (offset < before) {
                guard.checkTopic();
            }
            periodicCheck();
        }
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
        out.collect(SubscriptionDelta.of(in.value, epoch, in.partition, in.offset));
    }

    String problem(SubscriptionUpdate u) {
        String p = id("app_id", u.appId());
        if (p == null) {
            p = id("subscription_id", u.subscriptionId());
        }
        if (p != null) {
            return p;
        }
        if (u.sentAt() < MIN_SENT_AT || u.sentAt() > MAX_SENT_AT) {
            return "sent_at " + u.sentAt() + " ms is outside years 1..9999 (" + MIN_SENT_AT + ".." + MAX_SENT_AT + " ms since the epoch)";
        }
        for (Map.Entry<String, String> e : u.set().entrySet()) {
            int k = bytes(e.getKey());
            if (k > maxKeyBytes) {
                return "set key of " + k + " bytes is over subscriptions.max-key-bytes=" + maxKeyBytes;
            }
            if (hasNul(e.getKey())) {
                return "set key " + printable(e.getKey()) + " contains a NUL character, which Postgres jsonb cannot hold";
            }
            int v = bytes(e.getValue());
            if (v > maxValueBytes) {
                return "value of set." + e.getKey() + " is " + v + " bytes, over subscriptions.max-value-bytes=" + maxValueBytes;
            }
            if (hasNul(e.getValue())) {
                return "value of set." + printable(e.getKey()) + " contains a NUL character, which Postgres jsonb cannot hold";
            }
        }
        for (String k : u.unset()) {
            if (bytes(k) > maxKeyBytes) {
                return "unset key of " + bytes(k) + " bytes is over subscriptions.max-key-bytes=" + maxKeyBytes;
            }
            if (hasNul(k)) {
                return "unset key " + printable(k) + " contains a NUL character, which Postgres jsonb cannot hold";
            }
        }
        return null;
    }

    private String id(String field, String value) {
        if (value == null || value.isBlank()) {
            return "missing " + field;
        }
        if (bytes(value) > maxIdBytes) {
            return field + " of " + bytes(value) + " bytes is over subscriptions.max-id-bytes=" + maxIdBytes;
        }
        if (hasNul(value)) {
            return field + " " + printable(value) + " contains a NUL character, which Postgres text cannot hold";
        }
        return null;
    }

    private static boolean hasNul(String s) {
        return s != null && s.indexOf('\0') >= 0;
    }

    private static String printable(String s) {
        return "'" + s.replace("\0", "\\u0000") + "'";
    }

    private static int bytes(String s) {
        return s == null ? 0 : s.getBytes(StandardCharsets.UTF_8).length;
    }
}
