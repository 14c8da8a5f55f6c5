package io.sluice.local;

import io.sluice.testkit.LocalMachine;
import io.sluice.core.config.ConfigException;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.testkit.EmbeddedStack;
import io.sluice.testkit.FlinkRest;
import io.sluice.testkit.StackProbe;
import io.sluice.testkit.generator.GeneratorConfig;
import io.sluice.testkit.generator.LoadGenerator;
import io.sluice.jobs.SluiceJob;
import io.sluice.jobs.SluiceJobs;
import io.sluice.jobs.sidekiq.SidekiqBridgeJob;
import io.sluice.testkit.RedisServer;
import io.sluice.core.kafka.KafkaClients;
import io.sluice.core.setup.StackSetup;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code ./sluice local}: the whole pipeline on this machine. Starts the embedded stack (or uses
 * the infrastructure given with {@code --bootstrap}, {@code --registry}, {@code --shard-urls}),
 * creates topics, registers schemas, migrates the shards, starts Flink with its web UI, submits every
 * Sluice job and runs the load generator; prints the endpoints, a progress line every few seconds
 * and, at the end ({@code --duration} or Ctrl-C), a summary. Stops everything it started.
 */
public final class LocalCommand {
    static final Map<String, String> ALIASES = new HashMap<>(SluiceConfig.ALIASES);

    static {
        ALIASES.putAll(GeneratorConfig.ALIASES);
        ALIASES.put("duration", "local.duration");
        ALIASES.put("shards", "local.shards");
        ALIASES.put("web-port", "local.web-port");
        ALIASES.put("registry-port", "local.registry-port");
        ALIASES.put("jobs", "local.jobs");
        ALIASES.put("sidekiq", "local.sidekiq");
    }

    private final PrintStream out;
    private volatile boolean stopRequested;

    LocalCommand(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) throws Exception {
        if (List.of(args).contains("--help") || List.of(args).contains("-h")) {
            System.out.println(usage());
            return;
        }
        int code;
        try {
            code = new LocalCommand(System.out).run(args);
        } catch (ConfigException e) {
            System.err.println("sluice local: " + e.getMessage());
            code = 2;
        }
        System.exit(code);
    }

    static String usage() {
        return String.join("\n",
                "usage: ./sluice local [options] [--<config.key> value ...]",
                "  --duration SECONDS     stop by itself after this long and print a summary (default: run until Ctrl-C)",
                "  --rate N               records per second from the load generator (default 1000)",
                "  --apps N --users N     how many apps and users the generator spreads load over (Zipf-skewed)",
                "  --seed N               generator seed; the same seed gives the same records",
                "  --shards N             embedded Postgres shards to start (default 2)",
                "  --web-port N           Flink web UI / REST port (default 8081)",
                "  --jobs all|none        none: no Flink here, only the stack and the generator, for jobs on a",
                "                         standalone cluster (./sluice cluster start; ./sluice cluster submit all)",
                "  --sidekiq              also start Redis and the Sidekiq bridge, for Ruby workers (docs/sidekiq.md;",
                "                         needs Debian's redis-server)",
                "  --bootstrap H:P        use this Kafka instead of the embedded broker",
                "  --registry URL         use this schema registry instead of the stand-in",
                "  --shard-urls U0,U1     use these Postgres shards (JDBC URLs) instead of embedded ones",
                "  --config FILE          a YAML or .properties file of Sluice settings (see docs/configuration.md)");
    }

    int run(String[] args) throws Exception {
        // SLF4J binds on first use; Flink, Kafka and Postgres start on parallel threads below, and a binding that
        // happens under them prints a "substitute loggers" warning for every logger created meanwhile
        LoggerFactory.getILoggerFactory();
        RawConfig raw = RawConfig.fromArgs(args, System.getenv(), ALIASES);
        LocalOptions options = LocalOptions.from(raw);
        long durationS = options.durationS();
        int shardCount = options.shards();
        int webPort = options.webPort();
        long progressMs = options.progressMs();
        Path workDir = options.workDir();
        boolean runFlink = options.runFlink();
        boolean embedded = !raw.has("kafka.bootstrap") && !raw.has("registry.url") && !raw.has("shards.urls");
        if (!embedded && !(raw.has("kafka.bootstrap") && raw.has("registry.url") && raw.has("shards.urls"))) {
            throw new ConfigException("to use existing infrastructure give all of --bootstrap, --registry and --shard-urls"
                    + " (or none of them for the embedded stack)");
        }

        List<AutoCloseable> toClose = new ArrayList<>();
        CountDownLatch finished = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stopRequested = true;
            try {
                finished.await(90, TimeUnit.SECONDS);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "sluice-local-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        long t0 = System.nanoTime();
        try {
            LocalMachine.deleteRecursively(workDir);
            Files.createDirectories(workDir);
            out.println("sluice local: starting" + (embedded ? " the embedded stack (" + shardCount + " Postgres shards)" : " against existing infrastructure") + " ...");
            EmbeddedStack stack = null;
            var flinkStart = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                if (!runFlink) {
                    return null;
                }
                try {
                    return LocalFlink.start(workDir, webPort, 8);
                } catch (Exception e) {
                    throw new RuntimeException("Flink did not start (is port " + webPort + " free? use --web-port): " + e.getMessage(), e);
                }
            });
            long flinkT0 = System.nanoTime();
            if (embedded) {
                stack = EmbeddedStack.start(shardCount, options.registryPort());
                toClose.add(stack);
                stack.connect(raw, "sluice");
            }
            LocalFlink flink;
            try {
                flink = flinkStart.join();
            } catch (RuntimeException e) {
                throw new IllegalStateException(e.getCause().getMessage(), e.getCause());
            }
            long flinkMs = (System.nanoTime() - flinkT0) / 1_000_000;
            if (flink != null) {
                toClose.add(0, flink);
            }
            if (options.sidekiq()) {
                if (raw.has("sidekiq.redis-url")) {
                    out.println("  Redis            " + raw.string("sidekiq.redis-url", null) + " (given; not started here)");
                } else {
                    if (!Files.isExecutable(Path.of(RedisServer.BINARY))) {
                        throw new ConfigException("--sidekiq starts a Redis for the bridge, and " + RedisServer.BINARY + " is missing: install Debian's "
                                + "redis-server (apt-get install redis-server), or give the Redis to use with --sidekiq.redis-url");
                    }
                    RedisServer redis = RedisServer.start(workDir.resolve("redis"));
                    toClose.add(redis);
                    raw.put("sidekiq.redis-url", redis.url(), "./sluice local --sidekiq");
                }
                if (!raw.has("sidekiq.start-from")) {
                    // it starts with the jobs that write the push queue: it must not miss their first pushes
                    raw.put("sidekiq.start-from", "earliest", "./sluice local --sidekiq");
                }
            }
            if (!raw.has("deployment.id")) {
                raw.put("deployment.id", "local", "./sluice local"); // its own groups and transactional ids, also on a shared broker
            }
            for (String key : List.of("aggregation.allow-stateless-start", "subscriptions.allow-stateless-start")) {
                if (!raw.has(key)) {
                    // every run starts its jobs without state, also the second one against the same (non-embedded) brokers
                    raw.put(key, "true", "./sluice local");
                }
            }
            SluiceConfig config = SluiceConfig.from(raw);
            GeneratorConfig gen = GeneratorConfig.from(raw);
            raw.rejectUnread();

            var setup = StackSetup.run(config);
            Map<String, String> bridgeKeys = new HashMap<>();
            if (options.sidekiq()) {
                raw.values().forEach((k, v) -> {
                    if (k.startsWith("sidekiq.") && !k.equals("sidekiq.redis-password")) {
                        bridgeKeys.put(k, v);
                    }
                });
            }
            Path connection = writeConnectionFile(workDir, config, bridgeKeys);
            double startupS = (System.nanoTime() - t0) / 1e9;
            out.printf(Locale.ROOT, "sluice local: up in %.1f s%s%n", startupS,
                    stack == null ? "" : " (kafka " + stack.startMillis.get("kafka") + " ms, postgres " + stack.startMillis.get("postgres")
                            + " ms, registry " + stack.startMillis.get("registry") + " ms" + (flink == null ? "" : ", flink " + flinkMs + " ms")
                            + ", in parallel)");
            out.println("  Flink web UI     " + (flink == null ? "none here (--jobs none): submit the jobs with ./sluice cluster submit all" : flink.restAddress()));
            out.println("  Kafka bootstrap  " + config.kafka().bootstrap());
            out.println("  Schema registry  " + config.registry().url() + (embedded ? "   (development stand-in)" : ""));
            for (SluiceConfig.Shard s : config.shards().list()) {
                out.println("  Postgres shard " + s.index() + " " + s.jdbcUrl() + "   (user " + s.user() + ")");
            }
            out.println("  topics           " + String.join(", ", config.kafka().allTopics()) + " (" + config.kafka().partitions() + " partitions"
                    + (setup.createdTopics().isEmpty() ? ", already there)" : ")"));
            setup.topicDifferences().forEach(d -> out.println("  WARNING          " + d));
            out.println("  schema ids       " + setup.schemaIds());
            out.println("  connection file  " + connection + "   (--config for other Sluice commands)");

            Map<String, JobClient> jobs = new LinkedHashMap<>();
            List<SluiceJob> toRun = new ArrayList<>(SluiceJobs.all());
            if (options.sidekiq()) {
                toRun.add(new SidekiqBridgeJob());
                SluiceConfig.Sidekiq sk = config.sidekiq();
                String url = "redis://" + sk.redisHost() + ":" + sk.redisPort() + "/" + sk.redisDatabase();
                out.println("  Redis            " + sk.redisHost() + ":" + sk.redisPort() + " db " + sk.redisDatabase() + (flink == null
                        ? ": submit the Sidekiq bridge with ./sluice cluster submit sidekiq-bridge (the connection file names this Redis)"
                        : ": the Sidekiq bridge enqueues " + sk.jobClass() + " jobs on queue '" + sk.queue() + "'")
                        + " (workers: REDIS_URL=" + url + " sidekiq -r ./your_worker.rb; docs/sidekiq.md)");
            }
            for (SluiceJob job : flink == null ? List.<SluiceJob>of() : toRun) {
                StreamExecutionEnvironment env = flink.environment();
                job.build(env, config);
                jobs.put(job.name(), env.executeAsync("sluice-" + job.name()));
                out.println("  job              sluice-" + job.name() + " submitted (" + jobs.get(job.name()).getJobID() + ")");
            }
            if (jobs.isEmpty()) {
                out.println("  jobs             none here; progress lines show the jobs' committed progress wherever they run");
            }
            // cancelled before Flink stops, so their tasks end cleanly instead of losing their JobManager
            toClose.add(0, () -> {
                for (JobClient j : jobs.values()) {
                    j.cancel().get(30, TimeUnit.SECONDS);
                }
                for (JobClient j : jobs.values()) {
                    j.getJobExecutionResult().handle((r, e) -> null).get(30, TimeUnit.SECONDS);
                }
            });

            long epoch = gen.epochMs() > 0 ? gen.epochMs() : System.currentTimeMillis();
            LoadGenerator generator = new LoadGenerator(config, gen, setup.schemaIds(), gen.rate(), epoch, false).start();
            toClose.add(0, generator);
            out.printf(Locale.ROOT, "  load generator   %.0f records/s, %d apps, %d users, seed %d%s%n", gen.rate(),
                    gen.apps(), gen.users(), gen.seed(),
                    durationS > 0 ? "; stopping after " + durationS + " s" : "; Ctrl-C to stop");

            try (StackProbe probe = StackProbe.tolerant(config)) {
                FlinkRest rest = flink == null ? null : new FlinkRest(flink.restAddress());
                progressLoop(config, generator, probe, rest, jobs, durationS, progressMs);
                generator.close();
                if (gen.oracleFile() != null) {
                    Path oracleFile = Path.of(gen.oracleFile());
                    generator.oracle().writeSubscriptions(oracleFile);
                    out.println("  oracle           expected subscription rows written to " + oracleFile.toAbsolutePath());
                }
                summary(config, generator, probe, rest, jobs, (System.nanoTime() - t0) / 1e9);
            }
            return generator.failure() == null ? 0 : 1;
        } finally {
            for (AutoCloseable c : toClose) {
                try {
                    c.close();
                } catch (Exception e) {
                    out.println("sluice local: while stopping: " + e);
                }
            }
            LocalMachine.deleteRecursively(workDir.resolve("connection.yaml"));
            out.println("sluice local: stopped");
            finished.countDown();
            if (!stopRequested) {
                Runtime.getRuntime().removeShutdownHook(hook);
            }
        }
    }

    private void progressLoop(SluiceConfig config, LoadGenerator generator, StackProbe probe, FlinkRest rest, Map<String, JobClient> jobs,
                              long durationS, long progressMs) throws Exception {
        long start = System.nanoTime();
        long end = durationS > 0 ? start + TimeUnit.SECONDS.toNanos(durationS) : Long.MAX_VALUE;
        long lastProduced = 0;
        Map<String, Long> lastCommitted = new HashMap<>();
        long lastT = start;
        long nextTick = start + TimeUnit.MILLISECONDS.toNanos(progressMs);
        while (!stopRequested && System.nanoTime() < end) {
            long sleep = Math.min(nextTick, end) - System.nanoTime();
            if (sleep > 0) {
                Thread.sleep(Math.min(TimeUnit.NANOSECONDS.toMillis(sleep) + 1, 200));
                continue;
            }
            nextTick += TimeUnit.MILLISECONDS.toNanos(progressMs);
            long now = System.nanoTime();
            double dt = (now - lastT) / 1e9;
            long produced = generator.acked();
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "[%4ds] produced %,.0f/s (total %,d)",
                    TimeUnit.NANOSECONDS.toSeconds(now - start), (produced - lastProduced) / dt, produced));
            Map<String, long[]> progress = probe.jobProgress();
            for (SluiceJob job : SluiceJobs.all()) {
                long[] p = progress.getOrDefault(job.name(), new long[2]);
                long prev = lastCommitted.getOrDefault(job.name(), 0L);
                lastCommitted.put(job.name(), p[0]);
                String status = jobs.containsKey(job.name()) ? " " + jobs.get(job.name()).getJobStatus().get(5, TimeUnit.SECONDS).name() : "";
                line.append(String.format(Locale.ROOT, " | %s%s: committed %,.0f/s, message lag %,d, time lag %s", job.name(),
                        status.toLowerCase(Locale.ROOT), (p[0] - prev) / dt, probe.messageLag(KafkaClients.groupId(config, job.name()), job.inputTopic(config)),
                        p[1] == 0 ? "n/a" : String.format(Locale.ROOT, "%.1f s", (System.currentTimeMillis() - p[1]) / 1000.0)));
            }
            line.append(String.format(Locale.ROOT, " | dead letters %,d", probe.endOffsetSum(config.kafka().deadLettersTopic())));
            String bridge = sidekiqBridge(rest, jobs);
            if (bridge != null) {
                line.append(" | ").append(SidekiqBridgeJob.NAME).append(": ").append(bridge).append(String.format(Locale.ROOT, ", message lag %,d",
                        probe.messageLag(KafkaClients.groupId(config, SidekiqBridgeJob.consumerName(config)), config.sidekiq().topic())));
            }
            long[][] held = sinkShards(rest, jobs, config.shards().list().size());
            Map<Integer, StackProbe.ShardNotAnswering> silent = new HashMap<>();
            probe.shardsNotAnswering().forEach(s -> silent.put(s.shard(), s));
            for (int shard = 0; shard < held.length; shard++) { // the jobs retry it; only its apps' rows wait
                StackProbe.ShardNotAnswering behind = silent.get(shard);
                if (behind == null && held[shard][1] < 5) {
                    continue;
                }
                line.append(String.format(Locale.ROOT, " | shard %d behind: %,d rows pending, nothing committed for %d s", shard, held[shard][0], held[shard][1]));
                if (behind != null) {
                    line.append(String.format(Locale.ROOT, ", not answering for %.0f s, newest commit %s", (System.currentTimeMillis() - behind.sinceMs()) / 1000.0,
                            behind.newestCommittedEventAt() == 0 ? "none"
                                    : String.format(Locale.ROOT, "%.1f s behind", (System.currentTimeMillis() - behind.newestCommittedEventAt()) / 1000.0)));
                }
            }
            out.println(line);
            if (generator.failure() != null) {
                out.println("sluice local: the load generator failed: " + generator.failure());
                return;
            }
            lastProduced = produced;
            lastT = now;
        }
    }

    private void summary(SluiceConfig config, LoadGenerator generator, StackProbe probe, FlinkRest rest, Map<String, JobClient> jobs, double seconds)
            throws Exception {
        out.printf(Locale.ROOT, "sluice local: summary after %.0f s%n", seconds);
        out.printf(Locale.ROOT, "  produced         %,d records: %,d user events, %,d subscription updates, %,d campaigns%n", generator.acked(),
                generator.acked(config.kafka().userEventsTopic()), generator.acked(config.kafka().subscriptionUpdatesTopic()),
                generator.acked(config.kafka().campaignsTopic()));
        try {
            Map<String, long[]> progress = probe.jobProgress();
            for (SluiceJob job : SluiceJobs.all()) {
                long[] p = progress.getOrDefault(job.name(), new long[2]);
                out.printf(Locale.ROOT, "  job %-12s %s%,d records committed%n", job.name(),
                        jobs.containsKey(job.name()) ? jobs.get(job.name()).getJobStatus().get(5, TimeUnit.SECONDS) + ", " : "", p[0]);
            }
            String bridge = sidekiqBridge(rest, jobs);
            if (bridge != null) {
                out.printf(Locale.ROOT, "  job %-12s %s%n", SidekiqBridgeJob.NAME, bridge);
            }
            for (var e : probe.rowCounts().entrySet()) {
                out.println("  shard " + e.getKey() + "          " + e.getValue());
            }
            for (StackProbe.ShardNotAnswering behind : probe.shardsNotAnswering()) {
                out.printf(Locale.ROOT, "  shard %d          not answering for %.0f s: %s%n", behind.shard(),
                        (System.currentTimeMillis() - behind.sinceMs()) / 1000.0, behind.error());
            }
            long[][] held = sinkShards(rest, jobs, config.shards().list().size());
            for (int shard = 0; shard < held.length; shard++) {
                if (held[shard][0] > 0) {
                    out.printf(Locale.ROOT, "  shard %d          %,d rows still pending in the jobs' sinks (they go with the jobs' state)%n", shard, held[shard][0]);
                }
            }
        } catch (java.util.concurrent.ExecutionException e) {
            // on SIGTERM the embedded postgres servers' own shutdown hooks run alongside ours
            out.println("  shards/jobs      not readable any more (already stopping): " + e.getMessage());
        }
        out.printf(Locale.ROOT, "  dead letters     %,d%n", probe.endOffsetSum(config.kafka().deadLettersTopic()));
        if (generator.failure() != null) {
            out.println("  load generator failed: " + generator.failure());
        }
    }

    /**
     * Per shard, from the jobs' shard sinks over REST: the rows they hold for it (summed over jobs and subtasks) and the
     * longest time it has had rows waiting without a commit, in seconds. Zeros without Flink here or before the metrics
     * are reported (the web UI refreshes them every few seconds).
     */
    private static long[][] sinkShards(FlinkRest rest, Map<String, JobClient> jobs, int shards) {
        long[][] out = new long[shards][2];
        if (rest == null) {
            return out;
        }
        for (JobClient job : jobs.values()) {
            String id = job.getJobID().toString();
            for (int shard = 0; shard < shards; shard++) {
                try {
                    double pending = rest.metric(id, "into shards", "shard." + shard + ".pendingRows", "sum");
                    double waiting = rest.metric(id, "into shards", "shard." + shard + ".secondsSinceLastCommit", "max");
                    out[shard][0] += Double.isNaN(pending) ? 0 : (long) pending;
                    out[shard][1] = Math.max(out[shard][1], Double.isNaN(waiting) ? 0 : (long) waiting);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return out;
                } catch (java.io.IOException | RuntimeException notReported) {
                    // a job not running (yet): nothing to show for it
                }
            }
        }
        return out;
    }

    /** The Sidekiq bridge's jobs enqueued, replays skipped and queue length, from its metrics over REST; null when it does not run here. */
    private static String sidekiqBridge(FlinkRest rest, Map<String, JobClient> jobs) {
        JobClient bridge = jobs.get(SidekiqBridgeJob.NAME);
        if (bridge == null || rest == null) {
            return null;
        }
        String id = bridge.getJobID().toString();
        try {
            double enqueued = rest.metric(id, "enqueue into Sidekiq", "sidekiq.jobsEnqueued", "sum");
            double skipped = rest.metric(id, "enqueue into Sidekiq", "sidekiq.duplicatesSkipped", "sum");
            double queue = rest.metric(id, "bridged records", "sidekiq.queueLength", "max");
            if (Double.isNaN(enqueued) || Double.isNaN(skipped) || Double.isNaN(queue)) {
                return bridge.getJobStatus().get(5, TimeUnit.SECONDS).name().toLowerCase(Locale.ROOT) + ", metrics not reported yet";
            }
            return String.format(Locale.ROOT, "%,.0f Sidekiq jobs enqueued, %,.0f replays skipped, queue length %s", enqueued, skipped,
                    queue < 0 ? "unknown (Redis not answering)" : String.format(Locale.ROOT, "%,.0f", queue));
        } catch (Exception e) {
            return "metrics not readable (" + e.getMessage() + ")";
        }
    }

    /** The endpoints of this run as a Sluice config file, so other commands can use {@code --config} with it. */
    static Path writeConnectionFile(Path workDir, SluiceConfig config, Map<String, String> sidekiq) throws IOException {
        Path file = workDir.resolve("connection.yaml");
        StringBuilder y = new StringBuilder("# Written by ./sluice local while it runs; deleted when it stops.\n");
        y.append("deployment:\n  id: \"").append(config.deployment().id()).append("\"\n"); // quoted: YAML would read 'on' or '007' as no string
        y.append("kafka:\n  bootstrap: ").append(config.kafka().bootstrap()).append('\n');
        y.append("registry:\n  url: ").append(config.registry().url()).append('\n');
        y.append("shards:\n  user: ").append(config.shards().list().get(0).user()).append('\n');
        y.append("  urls: ");
        y.append(String.join(",", config.shards().list().stream().map(SluiceConfig.Shard::jdbcUrl).toList())).append('\n');
        if (!sidekiq.isEmpty()) { // the bridge's settings of this run, but its password (which comes from the environment there too)
            y.append("sidekiq:\n");
            new java.util.TreeMap<>(sidekiq).forEach((k, v) -> y.append("  ").append(k.substring("sidekiq.".length())).append(": \"")
                    .append(v.replace("\\", "\\\\").replace("\"", "\\\"")).append("\"\n"));
        }
        Files.writeString(file, y.toString());
        return file;
    }


}
