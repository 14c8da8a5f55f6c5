package io.sluice.jobs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.jobs.aggregation.AggregationJob;
import io.sluice.jobs.aggregation.AggregationRuns;
import io.sluice.jobs.subscriptions.SubscriptionRuns;
import io.sluice.testkit.Await;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import io.sluice.testkit.generator.Oracle;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The example Python producer ({@code tools/producers/python/sluice_producer.py}, Debian's python3-confluent-kafka and
 * python3-avro) against the embedded stack: it makes the schema registry calls a producer's CI makes, then writes user
 * events and subscription updates. Every record lands in the partition a Java producer would choose for its key
 * (murmur2), and both jobs turn them into exactly the {@code subscriptions} and {@code user_event_counts} rows the
 * records say.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class PythonProducerITCase {
    static final Path SCRIPT = Path.of("../tools/producers/python/sluice_producer.py");
    static final String PYTHON = "/usr/bin/python3";

    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    @Test
    void thePythonProducersRecordsLandInJavasPartitionsAndInBothTables(TestStack base, @TempDir Path dir) throws Exception {
        TestStack stack = base.fresh(Map.of("subscriptions.parallelism", "2", "aggregation.parallelism", "2")); // both jobs in the 4 slots
        var kafka = stack.config().kafka();
        Path report = dir.resolve("sent.jsonl");
        Process p = new ProcessBuilder(PYTHON, SCRIPT.toString(), "--bootstrap", kafka.bootstrap(), "--registry", stack.config().registry().url(),
                "--schemas", "../core/src/main/resources/avro", "--user-events-topic", kafka.userEventsTopic(),
                "--subscription-updates-topic", kafka.subscriptionUpdatesTopic(), "--events", "600", "--updates", "600", "--report", report.toString(),
                "--check-registry").redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the producer finished").isTrue();
        if (output.contains("No module named")) {
            throw new AssertionError(PYTHON + " lacks a module (install Debian's python3-confluent-kafka python3-avro python3-requests; "
                    + ".ci/run does): " + output);
        }
        assertThat(p.exitValue()).as("the producer's exit code; it printed: " + output).isZero();
        assertThat(output).contains("registry: register, get_subjects").contains("sent 600 user events and 600 subscription updates");

        ObjectMapper json = new ObjectMapper();
        List<JsonNode> sent = new ArrayList<>();
        for (String line : Files.readAllLines(report)) {
            sent.add(json.readTree(line));
        }
        assertThat(sent).hasSize(1_200);
        Map<String, Integer> partitions = new HashMap<>();
        try (KafkaProducer<byte[], byte[]> producer = stack.producer(Map.of())) {
            for (String t : List.of(kafka.userEventsTopic(), kafka.subscriptionUpdatesTopic())) {
                partitions.put(t, producer.partitionsFor(t).size());
            }
        }
        for (JsonNode r : sent) { // Java's default partitioner: murmur2 of the key bytes
            int javas = Utils.toPositive(Utils.murmur2(r.path("key").asText().getBytes(StandardCharsets.UTF_8))) % partitions.get(r.path("topic").asText());
            assertThat(r.path("partition").asInt()).as("partition of key " + r.path("key").asText() + " in " + r.path("topic").asText()).isEqualTo(javas);
        }

        // what the records say: each subscription's updates in offset order; each (app, user, event, window)'s count and sum
        Map<String, Map<String, String>> subscriptions = new HashMap<>();
        Map<String, long[]> counts = new TreeMap<>();
        Map<String, Double> sums = new HashMap<>();
        long window = stack.config().aggregation().windowMs();
        sent.stream().sorted(Comparator.comparingInt((JsonNode r) -> r.path("partition").asInt()).thenComparingLong(r -> r.path("offset").asLong()))
                .forEach(r -> {
                    JsonNode v = r.path("record");
                    if (r.path("topic").asText().equals(kafka.subscriptionUpdatesTopic())) {
                        Map<String, String> props = subscriptions.computeIfAbsent(v.path("app_id").asText() + "/" + v.path("subscription_id").asText(),
                                k -> new TreeMap<>());
                        v.path("set").fields().forEachRemaining(e -> props.put(e.getKey(), e.getValue().asText()));
                        v.path("unset").forEach(k -> props.remove(k.asText()));
                    } else {
                        String key = v.path("app_id").asText() + "/" + v.path("user_id").asText() + "/" + v.path("name").asText() + "/"
                                + Math.floorDiv(v.path("occurred_at").asLong(), window) * window;
                        counts.computeIfAbsent(key, k -> new long[1])[0]++;
                        sums.merge(key, v.path("value").isNull() ? 0.0 : v.path("value").asDouble(), Double::sum);
                    }
                });
        Map<String, Oracle.WindowRow> windows = new HashMap<>();
        counts.forEach((k, n) -> windows.put(k, new Oracle.WindowRow(n[0], sums.get(k))));

        JobClient subscriptionJob = SubscriptionRuns.start(stack);
        JobClient aggregationJob = AggregationRuns.start(stack, AggregationJob.sink(stack.config()), new Configuration());
        try {
            try {
                TestStack.assertSubscriptionRows(stack.awaitSubscriptionRows(subscriptions, 90_000), subscriptions, "the Python producer's updates");
            } catch (AssertionError e) { // say what became of them
                throw new AssertionError(e.getMessage() + "; dead letters: " + stack.readAll(kafka.deadLettersTopic()).stream().limit(3)
                        .map(d -> TestStack.header(d, io.sluice.jobs.common.DeadLetterSerializer.REASON)).toList() + "; jobs: "
                        + subscriptionJob.getJobStatus().get() + ", " + aggregationJob.getJobStatus().get(), e);
            }
            Map<String, Oracle.WindowRow> rows = Await.until("user_event_counts rows equal to the Python producer's events", Duration.ofSeconds(90),
                    Duration.ofMillis(500), stack::windowRows, r -> r.keySet().equals(windows.keySet())
                            && r.entrySet().stream().allMatch(e -> e.getValue().count() == windows.get(e.getKey()).count()));
            TestStack.assertWindowRows(rows, windows, "the Python producer's events");
            System.out.printf("the Python producer: %d records in Java's partitions; %d subscriptions and %d window rows as its records say%n",
                    sent.size(), subscriptions.size(), windows.size());
        } finally {
            subscriptionJob.cancel().get();
            aggregationJob.cancel().get();
        }
    }
}
