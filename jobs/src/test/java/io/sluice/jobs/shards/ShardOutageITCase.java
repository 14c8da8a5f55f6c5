package io.sluice.jobs.shards;

import io.sluice.core.kafka.KafkaClients;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.jobs.aggregation.AggregationJob;
import io.sluice.jobs.aggregation.AggregationRuns;
import io.sluice.jobs.subscriptions.SubscriptionJob;
import io.sluice.jobs.subscriptions.SubscriptionRuns;
import io.sluice.testkit.Await;
import io.sluice.testkit.Faults;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.testkit.generator.Oracle;
import io.sluice.testkit.generator.RecordSequence;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.testutils.junit.SharedObjectsExtension;
import org.apache.flink.testutils.junit.SharedReference;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One shard down delays only its own apps. Both jobs run under steady load on two shards while shard 0 is out for
 * 25 s: killed (SIGKILL of its postmaster and every child; its test database commits with
 * {@code synchronous_commit = on}, so what it acknowledged survives the crash) and started again, or hung (SIGSTOP of
 * every process, so connections neither fail nor answer) and resumed. In both runs both jobs also fail once, 10 s into
 * the outage (an injected exception), and restore from their checkpoints, whose sink state carries shard 0's rows; a
 * restore reaches the shards (the sinks' routing check, the subscription job's source check) while the hung one does
 * not answer, and gives up on it after the connect timeout. The subscription job checks its source against every shard
 * every 2 s ({@code kafka.partition-discovery-interval}), on a thread of its own: the hung shard must not hold it up.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ShardOutageITCase {
    static final long MINUTE = 60_000;

    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    @RegisterExtension
    final SharedObjectsExtension shared = SharedObjectsExtension.create();

    @Test
    void aKilledShardHoldsBackOnlyItsOwnRowsAcrossAJobFailureAndAfterItReturnsEverythingEqualsTheOracle(TestStack base,
                                                                                                       @InjectMiniCluster MiniCluster cluster) throws Exception {
        outage(base, cluster, true);
    }

    @Test
    void aHungShardHoldsBackOnlyItsOwnRowsAcrossAJobFailureAndAfterItResumesEverythingEqualsTheOracle(TestStack base, @InjectMiniCluster MiniCluster cluster)
            throws Exception {
        outage(base, cluster, false);
    }

    /** {@code killed}: SIGKILL and a restart; otherwise SIGSTOP and SIGCONT. Either way a job failure in the middle. */
    private void outage(TestStack base, MiniCluster cluster, boolean killed) throws Exception {
        int rate = 2_000;
        TestStack stack = base.fresh(Map.of("generator.count", String.valueOf(rate * 36), "generator.rate", String.valueOf(rate),
                "generator.update-fraction", "0.5", "generator.apps", "20", "generator.users", "5000", "generator.campaigns", "0",
                "subscriptions.parallelism", "2", "aggregation.parallelism", "2", "kafka.partition-discovery-interval", "2s"));
        try (Connection c = stack.shard(0); Statement s = c.createStatement()) { // before any job connects: sessions read it at start
            s.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$");
        }
        List<Campaign> campaigns = List.of(
                new Campaign("buyers", RecordSequence.appId(1), "purchase", 2, 10 * MINUTE, "Thanks!", 2_000, true),
                new Campaign("browsers", RecordSequence.appId(2), "view", 3, MINUTE, "Still looking?", 2_000, true));
        stack.send(campaigns.toArray(new Campaign[0]));
        SharedReference<Faults.ThrowOnce> fault = shared.add(new Faults.ThrowOnce(Long.MAX_VALUE));
        SharedReference<Faults.ThrowOnce> subscriptionFault = shared.add(new Faults.ThrowOnce(Long.MAX_VALUE));
        FlinkRest rest = new FlinkRest(cluster.getRestAddress().get());
        JobClient subscriptions = SubscriptionRuns.start(stack, new Faults.ThrowOnceSink<>(SubscriptionJob.sink(stack.config()), subscriptionFault));
        JobClient aggregation = AggregationRuns.start(stack, new Faults.ThrowOnceSink<>(AggregationJob.sink(stack.config()), fault), new Configuration());
        Properties p = KafkaClients.clientProperties(stack.config());
        p.put("isolation.level", "read_committed");
        try (KafkaConsumer<byte[], byte[]> pushes = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TestFlink.awaitMetric(rest, aggregation.getJobID().toString(), "detect segment entries", "activeCampaigns", "min", v -> v == 2);
            String pushTopic = stack.config().kafka().pushQueueTopic();
            pushes.assign(pushes.partitionsFor(pushTopic).stream().map(i -> new TopicPartition(pushTopic, i.partition())).toList());
            List<long[]> lags = new ArrayList<>(); // at, subscriptions' shard-1 lag, aggregation's shard-1 lag
            long killedAt;
            long failedAt;
            long[] checkpointsAtKill;
            long[] checkpointsAtReturn;
            int pushesDuringOutage = 0;
            Oracle oracle;
            try (LoadGenerator g = new LoadGenerator(stack.config(), stack.generator(), stack.schemaIds(), rate, System.currentTimeMillis(), true).start()) {
                Await.until("8 s of load", Duration.ofMinutes(1), () -> g.acked() >= 8L * rate);
                checkpointsAtKill = new long[] {completed(rest, subscriptions), completed(rest, aggregation)};
                List<ProcessHandle> hung = List.of();
                if (killed) {
                    stack.stack().postgres.kill(0);
                } else {
                    hung = Faults.postgresProcesses(stack.stack().postgres.port(0));
                    Faults.signal("STOP", hung);
                }
                killedAt = System.currentTimeMillis();
                failedAt = 0;
                try {
                    pushes.seekToEnd(pushes.assignment());
                    while (System.currentTimeMillis() - killedAt < 25_000) {
                        pushesDuringOutage += pushes.poll(Duration.ofMillis(150)).count();
                        long[] newest = newestOnShard1(stack);
                        long now = System.currentTimeMillis();
                        lags.add(new long[] {now, now - newest[0], now - newest[1]});
                        if (failedAt == 0 && now - killedAt >= 10_000) {
                            // both jobs fail and restore with shard 0 still down: their sinks' state carries its rows
                            // (the subscription job's are deltas, whose order matters)
                            fault.get().throwNow();
                            subscriptionFault.get().throwNow();
                            failedAt = now;
                        }
                    }
                    checkpointsAtReturn = new long[] {completed(rest, subscriptions), completed(rest, aggregation)};
                } finally { // shard 0 comes back whatever happened: other tests use it
                    if (killed) {
                        stack.stack().postgres.restart(0);
                    } else {
                        Faults.signal("CONT", hung);
                    }
                }
                oracle = g.awaitDone().oracle();
            }
            long returnedAt = System.currentTimeMillis();
            long fail = failedAt;
            long[] subscriptionLags = lags.stream().filter(l -> l[0] < fail).mapToLong(l -> l[1]).sorted().toArray();
            long[] aggregationLags = lags.stream().filter(l -> l[0] < fail).mapToLong(l -> l[2]).sorted().toArray();
            System.out.printf("shard 0 " + (killed ? "killed" : "hung") + " for %d ms: shard 1's time lag p99 %d ms (subscriptions), %d ms (aggregation), before their failure; "
                            + "checkpoints completed meanwhile %d and %d; %d push jobs received meanwhile%n", returnedAt - killedAt,
                    p99(subscriptionLags), p99(aggregationLags), checkpointsAtReturn[0] - checkpointsAtKill[0], checkpointsAtReturn[1] - checkpointsAtKill[1],
                    pushesDuringOutage);
            assertThat(fault.get().thrown()).as("the aggregation job failed once during the outage").isTrue();
            assertThat(subscriptionFault.get().thrown()).as("the subscription job failed once during the outage").isTrue();
            assertThat(p99(subscriptionLags)).as("shard 1's time lag p99 for the subscription job while shard 0 was down (before its failure)").isLessThan(2_000);
            assertThat(p99(aggregationLags)).as("shard 1's time lag p99 for the aggregation job while shard 0 was down (before its failure)").isLessThan(2_000);
            assertThat(checkpointsAtReturn[0] - checkpointsAtKill[0]).as("subscription checkpoints completed while shard 0 was down").isGreaterThanOrEqualTo(10);
            assertThat(checkpointsAtReturn[1] - checkpointsAtKill[1]).as("aggregation checkpoints completed while shard 0 was down").isGreaterThanOrEqualTo(5);
            assertThat(pushesDuringOutage).as("push jobs a read_committed consumer received while shard 0 was down").isPositive();

            // after shard 0 is back: every row equals the oracle, every push once
            TestStack.assertSubscriptionRows(stack.awaitSubscriptionRows(TestStack.expectedRows(oracle), 120_000), TestStack.expectedRows(oracle),
                    "after shard 0 was " + (killed ? "killed" : "hung") + " for 25 s");
            Map<String, Oracle.WindowRow> expected = oracle.windowCounts(MINUTE);
            Map<String, Oracle.WindowRow> rows = Await.until("window rows equal to the oracle", Duration.ofMinutes(2), Duration.ofMillis(500),
                    stack::windowRows, r -> r.size() == expected.size() && r.entrySet().stream()
                            .allMatch(e -> expected.containsKey(e.getKey()) && expected.get(e.getKey()).count() == e.getValue().count()));
            TestStack.assertWindowRows(rows, expected, "after shard 0 was " + (killed ? "killed" : "hung") + " for 25 s and the job failed meanwhile");
            Map<String, String> expectedJobs = oracle.pushJobs(campaigns);
            List<PushJob> jobs = Await.until(expectedJobs.size() + " push jobs", Duration.ofMinutes(1), Duration.ofMillis(500), stack::pushJobs,
                    j -> j.size() >= expectedJobs.size());
            assertThat(jobs.stream().collect(Collectors.groupingBy(PushJob::jobId, Collectors.counting())))
                    .as("every push job once").allSatisfy((id, n) -> assertThat(n).as(id).isEqualTo(1)).containsOnlyKeys(expectedJobs.keySet());
        } finally {
            fault.get().disarm();
            subscriptionFault.get().disarm();
            subscriptions.cancel().get();
            aggregation.cancel().get();
        }
    }

    private static long p99(long[] sorted) {
        return sorted.length == 0 ? Long.MAX_VALUE : sorted[Math.min(sorted.length - 1, (int) Math.ceil(0.99 * sorted.length) - 1)];
    }

    private static long completed(FlinkRest rest, JobClient job) throws Exception {
        return rest.completedCheckpointCount(job.getJobID().toString());
    }

    /** The newest event time each job (subscriptions, aggregation) committed on shard 1. */
    private static long[] newestOnShard1(TestStack stack) throws Exception {
        Map<String, Long> newest = new HashMap<>();
        try (Connection c = stack.shard(1); Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT job, max(newest_event_at) FROM sluice_progress GROUP BY job")) {
            while (rs.next()) {
                newest.put(rs.getString(1), rs.getTimestamp(2).getTime());
            }
        }
        return new long[] {newest.getOrDefault(SubscriptionJob.NAME, 0L), newest.getOrDefault(AggregationJob.NAME, 0L)};
    }
}
