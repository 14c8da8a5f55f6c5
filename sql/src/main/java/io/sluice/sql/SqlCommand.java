package io.sluice.sql;

import io.sluice.core.config.ConfigException;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import org.apache.flink.table.client.SqlClient;
import org.apache.flink.table.client.cli.CliClient;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code ./sluice sql}: Flink's own SQL client ({@link SqlClient}, interactive) with Sluice's UDF jar
 * loaded and every table, view and function of {@code sql/tables/} already defined, against the
 * local stack ({@code ./sluice local}'s connection file and web UI) or a given cluster, registry and
 * shards. {@code -f FILE} runs a script (its placeholders filled, see {@link SqlScripts}) and exits
 * non-zero if a statement fails.
 *
 * <p>Options: {@code --config FILE} (default {@code target/sluice-local/connection.yaml}, written by
 * {@code ./sluice local} while it runs), any Sluice config key as {@code --key value}, {@code --rest
 * URL} (the Flink cluster the queries run on; default {@code http://localhost:8081}), {@code --set
 * name=value} (a query parameter, repeatable), {@code --udf-jar PATH} (default
 * {@code udfs/target/sluice-udfs.jar}), {@code --sql-dir DIR} (default {@code sql}). The cluster needs
 * the Kafka and JDBC connectors and Flink's avro-confluent format on its classpath, as the local
 * stack's Flink has; only the UDF jar is shipped with each query.
 */
public final class SqlCommand {
    private SqlCommand() {
    }

    public static void main(String[] args) {
        int code;
        try {
            code = run(args);
        } catch (ConfigException | IllegalArgumentException e) {
            System.err.println("sluice sql: " + e.getMessage());
            code = 2;
        } catch (Throwable t) {
            System.err.println("sluice sql: " + t.getMessage());
            code = 1;
        }
        System.exit(code);
    }

    static String usage() {
        return String.join("\n",
                "usage: ./sluice sql [-f FILE] [--set name=value ...] [--rest URL] [--config FILE] [--<config.key> value ...]",
                "  (no -f)              the interactive Flink SQL client, Sluice's tables, views and functions defined",
                "  -f FILE              run a script of sql/ (or any), print its results, exit non-zero if a statement fails",
                "  --set name=value     a parameter of the script, e.g. --set app_id=app-3 (see the script's comment)",
                "  --rest URL           the Flink cluster to run queries on (default http://localhost:8081, ./sluice local's)",
                "  --config FILE        Sluice's settings: broker, registry, shards (default target/sluice-local/connection.yaml,",
                "                       written by ./sluice local while it runs); or --bootstrap, --registry, --shard-urls",
                "  --sql.scan-startup-mode M   where the topic tables start reading (default earliest-offset)");
    }

    static int run(String[] args) throws Exception {
        String file = null;
        Map<String, String> params = new LinkedHashMap<>();
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "-h", "--help" -> {
                    System.out.println(usage());
                    return 0;
                }
                case "-f", "--file" -> file = value(args, ++i, "-f");
                case "--set" -> {
                    String kv = value(args, ++i, "--set");
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        throw new ConfigException("--set takes name=value, got '" + kv + "'");
                    }
                    params.put(kv.substring(0, eq), kv.substring(eq + 1));
                }
                default -> rest.add(args[i]);
            }
        }
        Map<String, String> env = new HashMap<>(System.getenv());
        Path connection = Path.of("target/sluice-local/connection.yaml");
        if (!rest.contains("--config") && !env.containsKey(RawConfig.ENV_PREFIX + "CONFIG") && Files.exists(connection)) {
            rest.add("--config");
            rest.add(connection.toString());
        }
        RawConfig raw = RawConfig.fromArgs(rest.toArray(new String[0]), env, SluiceConfig.ALIASES);
        URI restUri = URI.create(raw.string("rest", "http://localhost:8081"));
        if (restUri.getHost() == null) {
            throw raw.invalid("rest", restUri.toString(), "the Flink REST URL, e.g. http://localhost:8081");
        }
        Path udfJar = Path.of(raw.string("udf-jar", "udfs/target/sluice-udfs.jar"));
        Path sqlDir = Path.of(raw.string("sql-dir", "sql"));
        for (String key : List.of("sql.scan-startup-mode", "sql.scan-bounded-mode")) {
            if (raw.has(key)) {
                params.put(key, raw.string(key, null));
            }
        }
        SluiceConfig config;
        try {
            config = SluiceConfig.from(raw);
        } catch (ConfigException e) {
            throw new ConfigException(e.getMessage() + (Files.exists(connection) ? "" : " (is ./sluice local running? it writes " + connection + ")"));
        }
        raw.rejectUnread();
        checkRouting(config);
        if (!Files.exists(udfJar)) {
            throw new ConfigException("the UDF jar " + udfJar + " is missing: build it with mvn -pl udfs -am package -DskipTests (./sluice sql does)");
        }

        SqlScripts scripts = new SqlScripts(sqlDir, config, params);
        Path work = Files.createDirectories(Path.of("target/sluice-sql"));
        ownerOnly(work); // the client's history and the init script hold the shards' password
        // The client reads its Flink configuration from FLINK_CONF_DIR, as in a Flink distribution; ./sluice points it here.
        Path conf = Files.createDirectories(work.resolve("conf"));
        Files.writeString(conf.resolve("config.yaml"), String.join("\n",
                "# Written by ./sluice sql: where the SQL client sends its queries.",
                "execution.target: remote",
                "rest.address: " + restUri.getHost(),
                "rest.port: " + (restUri.getPort() > 0 ? restUri.getPort() : 8081),
                "# the key groups of the continuous queries' state, as the jobs have them (deployment.max-parallelism)",
                "pipeline.max-parallelism: " + config.deployment().maxParallelism(),
                ""));
        String confDir = System.getenv("FLINK_CONF_DIR");
        if (confDir == null || !Path.of(confDir).toAbsolutePath().normalize().equals(conf.toAbsolutePath().normalize())) {
            throw new ConfigException("set FLINK_CONF_DIR=" + conf.toAbsolutePath() + " (./sluice sql does) so the SQL client reads the cluster address"
                    + (confDir == null ? "" : "; it is " + confDir));
        }
        Path init = privateFile(work.resolve("init.sql"), scripts.init()); // holds the shard password, if any
        List<String> client = new ArrayList<>(List.of("embedded",
                "--init", init.toString(),
                "--jar", udfJar.toString(),
                "--history", work.resolve("history").toString()));
        if (file != null) {
            Path script = Path.of(file);
            String text = scripts.render(script.getFileName().toString(), Files.readString(script));
            client.add("--file");
            client.add(privateFile(work.resolve("script.sql"), text).toString());
        } else {
            System.out.println("sluice sql: tables " + String.join(", ", List.of("user_events", "subscription_updates", "campaigns", "push_queue",
                    "dead_letters", "subscriptions", "user_event_counts", "sluice_progress", "app_hourly_summary"))
                    + " (and one per shard: <table>_<shard>); functions SHARD_OF, BUCKET_OF, PROP, TIME_LAG_MS, PUSH_JOB_ID;"
                    + " queries to try: " + sqlDir.resolve("queries") + "; cluster " + restUri);
        }
        try {
            if (file == null) {
                Client.start(client.toArray(new String[0]), CliClient.DEFAULT_TERMINAL_FACTORY);
                return 0;
            }
            // Flink's client prints a failed statement and carries on to exit 0; watch what it prints to exit 1 instead.
            ErrorWatchingStream out = new ErrorWatchingStream(System.out);
            Client.start(client.toArray(new String[0]), () -> {
                try {
                    return TerminalBuilder.builder().streams(System.in, out).dumb(true).build();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            out.flush();
            if (out.failedStatement != null) {
                System.err.println("sluice sql: a statement of " + file + " failed: " + out.failedStatement);
                return 1;
            }
            return 0;
        } finally {
            Files.deleteIfExists(init);
            Files.deleteIfExists(work.resolve("script.sql"));
        }
    }

    /** Flink's {@link SqlClient} with the terminal chosen here ({@code startClient} is for its subclasses). */
    private static final class Client extends SqlClient {
        private Client() {
            super(false, null, null);
        }

        static void start(String[] args, Supplier<Terminal> terminal) {
            startClient(args, terminal);
        }
    }

    /** Passes the client's output through and remembers the first {@code [ERROR] Could not execute SQL statement} with its reason line. */
    static final class ErrorWatchingStream extends OutputStream {
        private final OutputStream out;
        private final StringBuilder line = new StringBuilder();
        private boolean errorSeen;
        volatile String failedStatement;

        ErrorWatchingStream(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            if (b != '\n') {
                line.append((char) b);
                return;
            }
            String text = line.toString().replaceAll("\u001B\\[[0-9;]*m", "").trim();
            line.setLength(0);
            if (errorSeen && failedStatement == null && !text.isEmpty() && !text.startsWith("[ERROR]")) {
                failedStatement = text;
            }
            if (text.contains("[ERROR] Could not execute SQL statement")) {
                errorSeen = true;
            }
        }

        @Override
        public void flush() throws IOException {
            out.flush();
            if (errorSeen && failedStatement == null) {
                failedStatement = "see the output above";
            }
        }
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new ConfigException(option + " needs a value (see --help)");
        }
        return args[i];
    }

    /** Only the owner may list or read {@code dir} (the client's log, history and scripts are in it). */
    private static void ownerOnly(Path dir) throws IOException {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    }

    private static Path privateFile(Path path, String content) throws IOException {
        Files.deleteIfExists(path);
        Files.createFile(path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(path, content);
        return path;
    }

    /**
     * Refuses a configuration whose routing is not the one the shards record (the SQL views and SHARD_OF would
     * look for apps on the wrong shard): the same check the jobs make, without recording anything. A shard that
     * cannot be reached is left to the queries, which report it themselves.
     */
    static void checkRouting(SluiceConfig config) {
        for (SluiceConfig.Shard shard : config.shards().list()) {
            try (java.sql.Connection c = shard.connect()) {
                java.util.Optional<String> wrong = io.sluice.core.db.ShardRouting.check(c, shard.index(), config.router());
                if (wrong.isPresent()) {
                    throw new ConfigException(wrong.get().replace("the jobs", "the jobs (and ./sluice sql)"));
                }
            } catch (java.sql.SQLException e) {
                System.err.println("sluice sql: could not check the routing recorded on shard " + shard.index() + ": " + e.getMessage());
            }
        }
    }
}
