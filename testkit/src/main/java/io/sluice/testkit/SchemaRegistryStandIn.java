package io.sluice.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.SchemaCompatibility;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * DEVELOPMENT STAND-IN for a Confluent Schema Registry, for local runs and tests only (no registry
 * server can be installed on Sluice's build machines). In production point {@code registry.url} at
 * your real registry.
 *
 * <p>It speaks the subset of the Confluent REST API that the Confluent client (as relocated inside
 * Flink's avro-confluent format) and operators use, with the same paths, bodies, status codes and
 * error codes: register ({@code POST /subjects/{s}/versions}, the same schema text gets the same
 * id), look up ({@code POST /subjects/{s}}), fetch by id ({@code GET /schemas/ids/{id}}), list
 * ({@code GET /subjects}, {@code GET /subjects/{s}/versions}, {@code GET /subjects/{s}/versions/{v|latest}}),
 * compatibility ({@code GET} and {@code PUT /config} and {@code /config/{s}}, {@code POST
 * /compatibility/subjects/{s}/versions/{v|latest}} and {@code .../versions}: what a producer's CI calls
 * before it deploys a schema change), and delete ({@code DELETE /subjects/{s}}). New versions are checked against the subject's compatibility level
 * (BACKWARD, the registry's default, unless set; FORWARD, FULL, their TRANSITIVE forms, NONE) and refused
 * with HTTP 409 when incompatible. State is in memory.
 */
public final class SchemaRegistryStandIn implements AutoCloseable {
    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern SUBJECT_VERSIONS = Pattern.compile("/subjects/([^/]+)/versions/?");
    private static final Pattern SUBJECT_VERSION = Pattern.compile("/subjects/([^/]+)/versions/([^/]+)");
    private static final Pattern SUBJECT = Pattern.compile("/subjects/([^/]+)/?");
    private static final Pattern SCHEMA_BY_ID = Pattern.compile("/schemas/ids/(\\d+)(/schema)?");
    private static final Pattern SUBJECT_CONFIG = Pattern.compile("/config/([^/]+)/?");
    private static final Pattern COMPATIBILITY = Pattern.compile("/compatibility/subjects/([^/]+)/versions(?:/([^/]+))?/?");
    private static final List<String> LEVELS = List.of("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE");

    private HttpServer server;
    private final Map<Integer, String> schemasById = new LinkedHashMap<>();
    private final Map<String, Integer> idsByCanonical = new LinkedHashMap<>();
    private final Map<String, List<Integer>> versionsBySubject = new LinkedHashMap<>();
    private final Map<String, String> levelBySubject = new LinkedHashMap<>();
    private String globalLevel = "BACKWARD";

    private SchemaRegistryStandIn() {
    }

    /** Starts on {@code port} of the loopback interface (0 = any free port). */
    public static SchemaRegistryStandIn start(int port) throws IOException {
        SchemaRegistryStandIn registry = new SchemaRegistryStandIn();
        registry.listen(port);
        return registry;
    }

    private void listen(int port) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        s.createContext("/", this::handle);
        s.setExecutor(Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, "schema-registry-stand-in");
            t.setDaemon(true);
            return t;
        }));
        s.start();
        server = s;
    }

    /**
     * Stops listening (clients get connection refused, as from a registry that is down) and, after {@code down},
     * listens again on the same port with the same schemas and ids.
     */
    public void unreachableFor(java.time.Duration down) throws IOException, InterruptedException {
        int port = server.getAddress().getPort();
        close();
        Thread.sleep(down.toMillis());
        listen(port);
    }

    public String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            String method = ex.getRequestMethod();
            Matcher m;
            synchronized (this) {
                if (method.equals("GET") && (path.equals("/subjects") || path.equals("/subjects/"))) {
                    reply(ex, 200, JSON.valueToTree(new ArrayList<>(versionsBySubject.keySet())));
                } else if (path.equals("/config") || path.equals("/config/")) {
                    config(ex, method, null);
                } else if ((m = SUBJECT_CONFIG.matcher(path)).matches()) {
                    config(ex, method, decode(m.group(1)));
                } else if ((m = COMPATIBILITY.matcher(path)).matches() && method.equals("POST")) {
                    testCompatibility(ex, decode(m.group(1)), m.group(2));
                } else if ((m = SCHEMA_BY_ID.matcher(path)).matches() && method.equals("GET")) {
                    String schema = schemasById.get(Integer.parseInt(m.group(1)));
                    if (schema == null) {
                        error(ex, 404, 40403, "Schema " + m.group(1) + " not found");
                    } else if (m.group(2) != null) {
                        reply(ex, 200, JSON.readTree(schema));
                    } else {
                        reply(ex, 200, JSON.createObjectNode().put("schema", schema));
                    }
                } else if ((m = SUBJECT_VERSIONS.matcher(path)).matches() && method.equals("POST")) {
                    register(ex, decode(m.group(1)));
                } else if (m.matches() && method.equals("GET")) {
                    List<Integer> versions = versionsBySubject.get(decode(m.group(1)));
                    if (versions == null) {
                        error(ex, 404, 40401, "Subject '" + decode(m.group(1)) + "' not found.");
                    } else {
                        reply(ex, 200, JSON.valueToTree(numbers(versions)));
                    }
                } else if ((m = SUBJECT_VERSION.matcher(path)).matches() && method.equals("GET")) {
                    version(ex, decode(m.group(1)), m.group(2));
                } else if ((m = SUBJECT.matcher(path)).matches() && method.equals("POST")) {
                    lookup(ex, decode(m.group(1)));
                } else if (m.matches() && method.equals("DELETE")) {
                    deleteSubject(ex, decode(m.group(1)));
                } else {
                    error(ex, 404, 404, "HTTP 404 Not Found: " + method + " " + path + " is not served by this development stand-in");
                }
            }
        } catch (RuntimeException e) {
            error(ex, 500, 50001, "Error in the backend data store: " + e);
        }
    }

    private void register(HttpExchange ex, String subject) throws IOException {
        Schema schema = parseBody(ex);
        if (schema == null) {
            return;
        }
        String canonical = schema.toString();
        List<Integer> versions = versionsBySubject.computeIfAbsent(subject, s -> new ArrayList<>());
        Integer existing = idsByCanonical.get(canonical);
        if (existing != null && versions.contains(existing)) {
            reply(ex, 200, JSON.createObjectNode().put("id", existing));
            return;
        }
        List<String> problems = incompatibilities(subject, schema, null);
        if (!problems.isEmpty()) {
            error(ex, 409, 409, "Schema being registered is incompatible with an earlier schema for subject \"" + subject
                    + "\", details: " + problems);
            return;
        }
        int id = existing != null ? existing : schemasById.size() + 1;
        schemasById.put(id, canonical);
        idsByCanonical.put(canonical, id);
        versions.add(id);
        reply(ex, 200, JSON.createObjectNode().put("id", id));
    }

    /** GET reads the level ({@code subject} null: the global one); PUT sets it, body {@code {"compatibility": "FULL"}}. */
    private void config(HttpExchange ex, String method, String subject) throws IOException {
        if (method.equals("GET")) {
            String level = subject == null ? globalLevel : levelBySubject.get(subject);
            if (level == null && String.valueOf(ex.getRequestURI().getQuery()).contains("defaultToGlobal=true")) {
                level = globalLevel;
            }
            if (level == null) {
                error(ex, 404, 40408, "Subject '" + subject + "' does not have subject-level compatibility configured");
            } else {
                reply(ex, 200, JSON.createObjectNode().put("compatibilityLevel", level));
            }
        } else if (method.equals("PUT")) {
            JsonNode body;
            try {
                body = JSON.readTree(ex.getRequestBody());
            } catch (IOException e) {
                error(ex, 422, 42203, "Request body is not JSON: " + e.getMessage());
                return;
            }
            String level = body == null ? "" : body.path("compatibility").asText();
            if (!LEVELS.contains(level)) {
                error(ex, 422, 42203, "Invalid compatibility level. Valid values are " + LEVELS);
                return;
            }
            if (subject == null) {
                globalLevel = level;
            } else {
                levelBySubject.put(subject, level);
            }
            reply(ex, 200, JSON.createObjectNode().put("compatibility", level));
        } else {
            error(ex, 405, 405, "HTTP 405 Method Not Allowed: " + method + " on /config");
        }
    }

    /** Whether the body's schema could be registered next: against {@code which} version, or every version when null. */
    private void testCompatibility(HttpExchange ex, String subject, String which) throws IOException {
        Schema schema = parseBody(ex);
        if (schema == null) {
            return;
        }
        List<Integer> versions = versions(ex, subject);
        if (versions == null) {
            return;
        }
        Integer against = null;
        if (which != null) {
            Integer index = versionIndex(ex, versions, which);
            if (index == null) {
                return;
            }
            against = versions.get(index);
        }
        List<String> problems = incompatibilities(subject, schema, against);
        ObjectNode out = JSON.createObjectNode().put("is_compatible", problems.isEmpty());
        if (String.valueOf(ex.getRequestURI().getQuery()).contains("verbose=true")) {
            out.set("messages", JSON.valueToTree(problems));
        }
        reply(ex, 200, out);
    }

    /**
     * Why {@code schema} may not follow the subject's versions under its compatibility level: against {@code only} (a
     * schema id), or else the latest version (all of them for a TRANSITIVE level). Empty when it may.
     */
    private List<String> incompatibilities(String subject, Schema schema, Integer only) {
        List<Integer> versions = versionsBySubject.getOrDefault(subject, List.of());
        String level = levelBySubject.getOrDefault(subject, globalLevel);
        List<Integer> against = only != null ? List.of(only) : versions.isEmpty() ? List.of()
                : level.endsWith("_TRANSITIVE") ? versions : List.of(versions.get(versions.size() - 1));
        List<String> problems = new ArrayList<>();
        for (int id : against) {
            Schema old = new Schema.Parser().parse(schemasById.get(id));
            if (level.startsWith("BACKWARD") || level.startsWith("FULL")) {
                check(schema, old, "the new schema cannot read data written with schema id " + id, problems);
            }
            if (level.startsWith("FORWARD") || level.startsWith("FULL")) {
                check(old, schema, "schema id " + id + " cannot read data written with the new schema", problems);
            }
        }
        return problems;
    }

    private static void check(Schema reader, Schema writer, String what, List<String> problems) {
        var result = SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
        if (result.getType() != SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE) {
            problems.add(what + ": " + result.getResult().getIncompatibilities());
        }
    }

    /** Forgets the subject and its level (its schema ids stay valid, as in a Confluent registry); answers its version numbers. */
    private void deleteSubject(HttpExchange ex, String subject) throws IOException {
        List<Integer> versions = versions(ex, subject);
        if (versions == null) {
            return;
        }
        versionsBySubject.remove(subject);
        levelBySubject.remove(subject);
        reply(ex, 200, JSON.valueToTree(numbers(versions)));
    }

    /** The version numbers of a subject's versions: 1 to their count. */
    private static List<Integer> numbers(List<Integer> versions) {
        List<Integer> numbers = new ArrayList<>();
        for (int i = 1; i <= versions.size(); i++) {
            numbers.add(i);
        }
        return numbers;
    }

    private void lookup(HttpExchange ex, String subject) throws IOException {
        Schema schema = parseBody(ex);
        if (schema == null) {
            return;
        }
        List<Integer> versions = versions(ex, subject);
        if (versions == null) {
            return;
        }
        Integer id = idsByCanonical.get(schema.toString());
        int index = id == null ? -1 : versions.indexOf(id);
        if (index < 0) {
            error(ex, 404, 40403, "Schema not found");
            return;
        }
        reply(ex, 200, versionNode(subject, index));
    }

    private void version(HttpExchange ex, String subject, String which) throws IOException {
        List<Integer> versions = versions(ex, subject);
        if (versions == null) {
            return;
        }
        Integer index = versionIndex(ex, versions, which);
        if (index != null) {
            reply(ex, 200, versionNode(subject, index));
        }
    }

    /** The subject's schema ids by version, or null after answering that there is no such subject. */
    private List<Integer> versions(HttpExchange ex, String subject) throws IOException {
        List<Integer> versions = versionsBySubject.get(subject);
        if (versions == null) {
            error(ex, 404, 40401, "Subject '" + subject + "' not found.");
        }
        return versions;
    }

    /** The index of version {@code which} ({@code latest}, {@code -1} or a number from 1), or null after answering why there is none. */
    private static Integer versionIndex(HttpExchange ex, List<Integer> versions, String which) throws IOException {
        int index;
        try {
            index = which.equals("latest") || which.equals("-1") ? versions.size() - 1 : Integer.parseInt(which) - 1;
        } catch (NumberFormatException e) {
            error(ex, 422, 42202, "The specified version '" + which + "' is not a valid version id.");
            return null;
        }
        if (index < 0 || index >= versions.size()) {
            error(ex, 404, 40402, "Version " + which + " not found.");
            return null;
        }
        return index;
    }

    private ObjectNode versionNode(String subject, int index) {
        int id = versionsBySubject.get(subject).get(index);
        return JSON.createObjectNode().put("subject", subject).put("version", index + 1).put("id", id)
                .put("schemaType", "AVRO").put("schema", schemasById.get(id));
    }

    private Schema parseBody(HttpExchange ex) throws IOException {
        JsonNode body;
        try {
            body = JSON.readTree(ex.getRequestBody());
        } catch (IOException e) {
            error(ex, 422, 42201, "Request body is not JSON: " + e.getMessage());
            return null;
        }
        JsonNode type = body == null ? null : body.get("schemaType");
        if (type != null && !type.asText().equals("AVRO")) {
            error(ex, 422, 42201, "Only AVRO schemas are supported by this development stand-in, got " + type.asText());
            return null;
        }
        if (body == null || !body.hasNonNull("schema")) {
            error(ex, 422, 42201, "Request body needs a \"schema\" field");
            return null;
        }
        try {
            return new Schema.Parser().parse(body.get("schema").asText());
        } catch (RuntimeException e) {
            error(ex, 422, 42201, "Invalid schema: " + e.getMessage());
            return null;
        }
    }

    private static String decode(String s) {
        return URLDecoder.decode(s, StandardCharsets.UTF_8);
    }

    private static void error(HttpExchange ex, int status, int code, String message) throws IOException {
        reply(ex, status, JSON.createObjectNode().put("error_code", code).put("message", message));
    }

    private static void reply(HttpExchange ex, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }
}
