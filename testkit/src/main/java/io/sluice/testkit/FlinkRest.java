package io.sluice.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;

/**
 * A small reader of Flink's REST API (the same endpoints the web UI uses), for benchmarks, the local
 * command and tests: job timings, completed checkpoints, operator metrics.
 */
public final class FlinkRest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final URI base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    public FlinkRest(URI base) {
        this.base = base;
    }

    /** GET {@code path} (e.g. {@code /jobs/overview}) as JSON; fails with the status and body otherwise. */
    public JsonNode get(String path) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IOException("GET " + path + " answered " + r.statusCode() + ": " + r.body());
        }
        return JSON.readTree(r.body());
    }

    /**
     * When the job's tasks ran: the earliest vertex start and the latest vertex end (epoch ms) of a
     * finished job, which leaves out submission and scheduling.
     */
    public long[] activeWindow(String jobId) throws IOException, InterruptedException {
        long start = Long.MAX_VALUE;
        long end = 0;
        for (JsonNode v : get("/jobs/" + jobId).path("vertices")) {
            start = Math.min(start, v.path("start-time").asLong());
            end = Math.max(end, v.path("end-time").asLong());
        }
        return new long[] {start, end};
    }

    /**
     * The latest time (epoch ms) any subtask of the job switched to RUNNING: its tasks had all deployed and initialized
     * (state restored, connections opened) by then. 0 if none reports it.
     */
    public long lastRunning(String jobId) throws IOException, InterruptedException {
        long last = 0;
        for (JsonNode v : get("/jobs/" + jobId).path("vertices")) {
            for (JsonNode s : get("/jobs/" + jobId + "/vertices/" + v.path("id").asText() + "/subtasktimes").path("subtasks")) {
                last = Math.max(last, s.path("timestamps").path("RUNNING").asLong());
            }
        }
        return last;
    }

    /**
     * An operator metric of a running job, aggregated over its subtasks ({@code agg}: min, max, sum,
     * avg); {@code vertexName} is a substring of the vertex name (chained operators share a vertex),
     * {@code metric} the name the operator registered (REST prefixes it with the operator's name).
     * NaN while the metric is not reported yet.
     */
    public double metric(String jobId, String vertexName, String metric, String agg) throws IOException, InterruptedException {
        String path = "/jobs/" + jobId + "/vertices/" + vertexId(jobId, vertexName) + "/subtasks/metrics";
        for (JsonNode id : get(path)) {
            String name = id.path("id").asText();
            if (name.equals(metric) || name.endsWith("." + metric)) {
                String q = java.net.URLEncoder.encode(name, java.nio.charset.StandardCharsets.UTF_8);
                for (JsonNode m : get(path + "?get=" + q + "&agg=" + agg)) {
                    return m.path(agg).asDouble(Double.NaN);
                }
            }
        }
        return Double.NaN;
    }

    /** The id of the job's first vertex whose name contains {@code vertexName}; fails while the job has none (not scheduled yet). */
    public String vertexId(String jobId, String vertexName) throws IOException, InterruptedException {
        for (JsonNode v : get("/jobs/" + jobId).path("vertices")) {
            if (v.path("name").asText().contains(vertexName)) {
                return v.path("id").asText();
            }
        }
        throw new IOException("job " + jobId + " has no vertex named like '" + vertexName + "'");
    }

    /** How many checkpoints of the job have completed so far (all of them, unlike the history). */
    public long completedCheckpointCount(String jobId) throws IOException, InterruptedException {
        return get("/jobs/" + jobId + "/checkpoints").path("counts").path("completed").asLong();
    }

    /** Completed checkpoints the REST history still holds: id → end-to-end duration (ms). */
    public Map<Long, Long> completedCheckpoints(String jobId) throws IOException, InterruptedException {
        Map<Long, Long> out = new TreeMap<>();
        for (JsonNode c : get("/jobs/" + jobId + "/checkpoints").path("history")) {
            if ("COMPLETED".equals(c.path("status").asText())) {
                out.put(c.path("id").asLong(), c.path("end_to_end_duration").asLong());
            }
        }
        return out;
    }
}
