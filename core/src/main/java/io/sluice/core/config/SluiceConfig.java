package io.sluice.core.config;

import io.sluice.routing.ShardRouter;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The one typed configuration of every Sluice job and tool, built from a {@link RawConfig}. Each
 * section is a small immutable record; the whole object is {@link Serializable} so jobs can hand it
 * to their operators. Keys, defaults and meaning are listed in {@code docs/configuration.md}, which a test keeps complete.
 */
public record SluiceConfig(
        Kafka kafka,
        Registry registry,
        Shards shards,
        Routing routing,
        Subscriptions subscriptions,
        Aggregation aggregation,
        Push push,
        Deployment deployment,
        Sidekiq sidekiq) implements Serializable {

    /** Short command-line names for the most used keys. */
    public static final Map<String, String> ALIASES = Map.ofEntries(
            Map.entry("bootstrap", "kafka.bootstrap"),
            Map.entry("registry", "registry.url"),
            Map.entry("shard-urls", "shards.urls"),
            Map.entry("partitions", "kafka.partitions"));

    public static SluiceConfig fromArgs(String[] args) {
        RawConfig raw = RawConfig.fromArgs(args, System.getenv(), ALIASES);
        SluiceConfig config = from(raw);
        raw.rejectUnread();
        return config;
    }

    /** Reads every section; call {@link RawConfig#rejectUnread()} afterwards when no other reader shares {@code raw}. */
    public static SluiceConfig from(RawConfig raw) {
        raw.allowPrefix("kafka.properties.");
        Shards shards = Shards.from(raw);
        Deployment deployment = Deployment.from(raw);
        Kafka kafka = Kafka.from(raw, deployment);
        SluiceConfig config = new SluiceConfig(
                kafka, Registry.from(raw), shards, Routing.from(raw, shards.list().size()),
                Subscriptions.from(raw), Aggregation.from(raw), Push.from(raw, deployment), deployment, Sidekiq.from(raw, deployment, kafka));
        Map<String, Integer> parallelisms = Map.of("subscriptions.parallelism", config.subscriptions().parallelism(),
                "aggregation.parallelism", config.aggregation().parallelism(), "sidekiq.parallelism", config.sidekiq().parallelism());
        parallelisms.forEach((key, p) -> {
            if (p > deployment.maxParallelism()) {
                throw new ConfigException(key + " is " + p + ", over deployment.max-parallelism " + deployment.maxParallelism()
                        + ": a job cannot run more subtasks than it has key groups. Lower " + key + " (deployment.max-parallelism is "
                        + "fixed for the life of the jobs' state; docs/cluster.md#max-parallelism)");
            }
        });
        return config;
    }

    /**
     * Which deployment of Sluice this is: {@code deployment.id}, a stable name (letters, digits, {@code . _ -}) that
     * never changes across submissions, unlike Flink's job id. It names the consumer groups
     * ({@code sluice-<id>-<job>}) and the push queue's transactional ids ({@code sluice-<id>-push-*}), so two
     * deployments on one broker (production and staging, a re-run of docker-compose's setup, a local run against a
     * shared broker) fence neither each other's producers nor each other's offsets. {@code sharedDefaults}: it is
     * unset and a prefix it would name was left at the shared default; the jobs refuse to start then.
     *
     * <p>{@code maxParallelism} ({@code deployment.max-parallelism}) is the jobs' Flink max parallelism: the number of key
     * groups their keyed state is split into, fixed for the life of the state (a savepoint restores only at the same
     * value), and the upper bound of every future rescale. The default, 720, is the partition count the docs advise, so
     * any parallelism up to it that divides the partitions also divides the key groups.
     */
    public record Deployment(String id, boolean sharedDefaults, int maxParallelism) implements Serializable {
        /** The default of {@code deployment.max-parallelism}; {@code flink-conf/config.yaml}'s {@code pipeline.max-parallelism} says the same. */
        public static final int DEFAULT_MAX_PARALLELISM = 720;
        static final java.util.regex.Pattern ID = java.util.regex.Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");

        static Deployment from(RawConfig raw) {
            String id = raw.string("deployment.id", "");
            if (!id.isEmpty() && !ID.matcher(id).matches()) {
                throw new ConfigException("config key 'deployment.id' is '" + id + "': expected a stable name of letters, digits, '.', '_' "
                        + "and '-', at most 63 characters, such as prod-eu or staging");
            }
            return new Deployment(id, id.isEmpty() && (!raw.has("kafka.group-prefix") || !raw.has("push.transactional-id-prefix")),
                    // Flink's upper bound for max parallelism is 2^15
                    raw.integer("deployment.max-parallelism", DEFAULT_MAX_PARALLELISM, 1, 1 << 15));
        }

        /** Why a job may not start with this configuration, if it may not. */
        public java.util.Optional<String> problem() {
            return sharedDefaults ? java.util.Optional.of("deployment.id is not set: a job with the shared defaults (consumer groups sluice-<job>, "
                    + "transactional ids sluice-push-*) fences, and is fenced by, any other deployment on the same brokers with them. Set "
                    + "deployment.id to a stable name for this deployment (e.g. --deployment.id prod-eu, or SLUICE_DEPLOYMENT_ID). An "
                    + "existing deployment that must keep its consumer groups and transactional ids sets kafka.group-prefix: sluice and "
                    + "push.transactional-id-prefix: sluice-push instead (docs/cluster.md)") : java.util.Optional.empty();
        }
    }

    public ShardRouter router() {
        return routing.router();
    }

    /** Kafka connection, topic names and client settings. */
    public record Kafka(
            String bootstrap,
            int partitions,
            String userEventsTopic,
            String subscriptionUpdatesTopic,
            String campaignsTopic,
            String pushQueueTopic,
            String deadLettersTopic,
            String groupPrefix,
            long transactionTimeoutMs,
            long partitionDiscoveryMs,
            Map<String, String> clientProperties,
            TopicSettings topicSettings) implements Serializable {

        /**
         * How stack setup creates the topics: replication factor, {@code min.insync.replicas} and retention (of every topic
         * but the compacted {@code campaigns}). 0 leaves a setting to the brokers' defaults ({@code default.replication.factor},
         * {@code min.insync.replicas}, {@code log.retention.*}).
         */
        public record TopicSettings(short replicationFactor, int minInsyncReplicas, long retentionMs) implements Serializable {
            static TopicSettings from(RawConfig raw) {
                TopicSettings t = new TopicSettings((short) raw.integer("kafka.replication-factor", 0, 0, Short.MAX_VALUE),
                        raw.integer("kafka.min-insync-replicas", 0, 0, Short.MAX_VALUE),
                        raw.has("kafka.retention") ? raw.durationMs("kafka.retention", 0, 3_600_000, 3650L * 86_400_000) : 0);
                if (t.replicationFactor() > 0 && t.minInsyncReplicas() > t.replicationFactor()) {
                    throw new ConfigException("kafka.min-insync-replicas is " + t.minInsyncReplicas() + ", over kafka.replication-factor "
                            + t.replicationFactor() + ": the brokers would accept such topics, and then refuse every write to them (acks=all). "
                            + "Lower kafka.min-insync-replicas or raise kafka.replication-factor");
                }
                return t;
            }
        }

        static Kafka from(RawConfig raw, Deployment deployment) {
            return new Kafka(
                    raw.required("kafka.bootstrap", "the Kafka bootstrap servers, host:port[,host:port]"),
                    raw.integer("kafka.partitions", 12, 1, 100_000),
                    topic(raw, "user-events"),
                    topic(raw, "subscription-updates"),
                    topic(raw, "campaigns"),
                    topic(raw, "push-queue"),
                    topic(raw, "dead-letters"),
                    raw.string("kafka.group-prefix", deployment.id().isEmpty() ? "sluice" : "sluice-" + deployment.id()),
                    // must stay <= the broker's transaction.max.timeout.ms (default 15 min; the job checks it at submission)
                    raw.durationMs("kafka.transaction-timeout", 600_000, 1_000, 7 * 86_400_000L),
                    raw.durationMs("kafka.partition-discovery-interval", 60_000, 1_000, 86_400_000),
                    Map.copyOf(raw.subtree("kafka.properties")),
                    TopicSettings.from(raw));
        }

        private static String topic(RawConfig raw, String name) {
            String key = "kafka.topics." + name;
            String v = raw.string(key, name);
            if (!v.matches("[a-zA-Z0-9._-]{1,249}")) {
                throw raw.invalid(key, v, "a Kafka topic name: 1 to 249 of letters, digits, '.', '_' and '-'");
            }
            return v;
        }

        public List<String> allTopics() {
            return List.of(userEventsTopic, subscriptionUpdatesTopic, campaignsTopic, pushQueueTopic, deadLettersTopic);
        }
    }

    /** The Confluent-compatible schema registry the Avro topics use. */
    public record Registry(String url) implements Serializable {
        static Registry from(RawConfig raw) {
            String url = raw.required("registry.url", "the schema registry URL, e.g. http://registry:8081");
            if (!url.matches("https?://.+")) {
                throw raw.invalid("registry.url", url, "an http:// or https:// URL");
            }
            return new Registry(url.replaceAll("/+$", ""));
        }
    }

    /**
     * How long a shard may keep a Sluice connection waiting: connecting, on a silent socket (TCP keepalive
     * is always on), for a row lock, and idle inside an open transaction (the server ends such a session, so
     * a writer host that vanishes mid-transaction releases its row locks).
     */
    public record Timeouts(long connectMs, long socketMs, long lockMs, long idleInTransactionMs) implements Serializable {
        static Timeouts from(RawConfig raw) {
            return new Timeouts(
                    raw.durationMs("shards.connect-timeout", 10_000, 1_000, 600_000),
                    raw.durationMs("shards.socket-timeout", 300_000, 1_000, 86_400_000),
                    raw.durationMs("shards.lock-timeout", 10_000, 1, 86_400_000),
                    raw.durationMs("shards.idle-in-transaction-timeout", 60_000, 1_000, 86_400_000));
        }
    }

    /** One Postgres shard; the password comes from configuration or the environment, never code. */
    public record Shard(int index, String jdbcUrl, String user, String password, Timeouts timeouts) implements Serializable {
        private static final java.sql.Driver PG_DRIVER = new org.postgresql.Driver();
        /**
         * The {@code application_name} of a Sluice sink's connections is this and the job's name: what {@code pg_stat_activity}
         * is searched for when a running job's sessions matter ({@code ./sluice reshard} refuses while there are any).
         */
        public static final String SINK_APPLICATION_PREFIX = "sluice-sink-";

        /** A new connection to this shard with its credentials and {@link Timeouts}, as application {@code sluice}. */
        public java.sql.Connection connect() throws java.sql.SQLException {
            return connect("sluice");
        }

        /**
         * A new connection to this shard with its credentials and {@link Timeouts}: pgjdbc's {@code connectTimeout} and
         * {@code loginTimeout} (so connecting, login and the session settings below take at most the connect timeout
         * each, also against a server that accepts connections and never answers), {@code socketTimeout} and
         * {@code tcpKeepAlive}, then the session's {@code lock_timeout} and
         * {@code idle_in_transaction_session_timeout} (SET after connecting, which poolers in session mode accept,
         * unlike startup options). {@code applicationName} shows in {@code pg_stat_activity}.
         */
        public java.sql.Connection connect(String applicationName) throws java.sql.SQLException {
            java.util.Properties p = new java.util.Properties();
            p.setProperty("user", user);
            if (password != null) {
                p.setProperty("password", password);
            }
            p.setProperty("connectTimeout", String.valueOf(Math.max(1, timeouts.connectMs() / 1000)));
            // the login too (TLS, startup, authentication), as one bound: against a server that accepts the TCP connection and
            // never answers (SIGSTOP, a stalled disk, a pooler out of connections) pgjdbc 42.7.4 otherwise waits connectTimeout
            // per attempt, and sslmode=prefer makes two: 5.1 s for a 2 s connectTimeout, 2.0 s with loginTimeout 2. With it,
            // pgjdbc connects on a thread of its own and gives up waiting after this many seconds
            p.setProperty("loginTimeout", String.valueOf(Math.max(1, timeouts.connectMs() / 1000)));
            p.setProperty("socketTimeout", String.valueOf(Math.max(1, timeouts.socketMs() / 1000)));
            p.setProperty("tcpKeepAlive", "true");
            p.setProperty("ApplicationName", applicationName);
            // pgjdbc's driver itself, not DriverManager's search: in a Flink job DriverManager only offers drivers of the caller's
            // class loader, and a job's loader registers its driver once its class is initialized, which this line does
            java.sql.Connection c = PG_DRIVER.connect(jdbcUrl, p);
            if (c == null) {
                throw new java.sql.SQLException("shard " + index + ": " + jdbcUrl + " is not a jdbc:postgresql: URL; fix entry " + index + " of shards.urls", "08001");
            }
            try (java.sql.Statement s = c.createStatement()) {
                c.setNetworkTimeout(Runnable::run, (int) Math.min(Integer.MAX_VALUE, timeouts.connectMs())); // still part of connecting
                s.execute("SET lock_timeout = " + timeouts.lockMs() + "; SET idle_in_transaction_session_timeout = " + timeouts.idleInTransactionMs());
                c.setNetworkTimeout(Runnable::run, (int) Math.min(Integer.MAX_VALUE, Math.max(1000, timeouts.socketMs() / 1000 * 1000)));
            } catch (java.sql.SQLException | RuntimeException e) {
                c.close();
                throw e;
            }
            return c;
        }

        @Override
        public String toString() {
            return "Shard[" + index + ", " + jdbcUrl + ", user=" + user + ", password=" + (password == null ? "none" : "***") + "]";
        }
    }

    /**
     * The Postgres shards, in bucket-map order, the connections each may use, and how many rows a sink subtask may hold
     * for one shard that does not take them (coalesced per key) before it stops taking input.
     */
    public record Shards(List<Shard> list, int maxConnections, int maxPendingRows) implements Serializable {
        /** A {@code password=} or {@code sslpassword=} parameter, or {@code user@} or {@code user:password@} before the host. */
        private static final java.util.regex.Pattern CREDENTIALS_IN_URL =
                java.util.regex.Pattern.compile("(?i)[?&;](ssl)?password=|^[a-z0-9+.:-]*//[^/?#]*@");

        static Shards from(RawConfig raw) {
            List<String> urls = raw.list("shards.urls");
            if (urls.isEmpty()) {
                throw new ConfigException("config key 'shards.urls' is missing: expected a comma-separated list of shard JDBC URLs"
                        + " (jdbc:postgresql://host:5432/db), e.g. --shard-urls url0,url1 or " + RawConfig.envName("shards.urls"));
            }
            String user = raw.string("shards.user", "sluice");
            String password = raw.string("shards.password", null);
            Timeouts timeouts = Timeouts.from(raw);
            List<Shard> list = new ArrayList<>();
            for (int i = 0; i < urls.size(); i++) {
                String url = urls.get(i);
                boolean credentials = CREDENTIALS_IN_URL.matcher(url).find();
                if (!url.startsWith("jdbc:postgresql://")) { // not shown if it might hold a password in any syntax (libpq, SQLAlchemy)
                    throw raw.invalid("shards.urls", url.contains("@") || url.toLowerCase(java.util.Locale.ROOT).contains("password")
                                    ? "(not shown: it may carry a password)" : url,
                            "JDBC URLs starting with jdbc:postgresql:// (entry " + i + ")");
                }
                if (credentials) {
                    // the URL is printed (logs, the SQL tables' DDL, error messages); the password never is
                    throw new ConfigException("entry " + i + " of shards.urls carries credentials (a password= or sslpassword= parameter, or user@ "
                            + "before the host); give the password in "
                            + "shards.password or shards." + i + ".password (or the environment variable " + RawConfig.envName("shards.password")
                            + ") and the user in shards.user instead, so it is never printed with the URL (sslpassword, the client key's "
                            + "passphrase, has no setting of its own: give the shard a key without one, in a file only the job's user can read)");
                }
                list.add(new Shard(i, url, raw.string("shards." + i + ".user", user), raw.string("shards." + i + ".password", password), timeouts));
            }
            return new Shards(List.copyOf(list), raw.integer("shards.max-connections", 1, 1, 64),
                    raw.integer("shards.max-pending-rows", 250_000, 1, 100_000_000));
        }
    }

    /**
     * The app -> bucket -> shard rule: {@code buckets} fixed buckets by a named hash of the app id
     * ({@code routing.hash}, default {@code murmur3-32}), and a bucket -> shard table
     * ({@code routing.bucket-map}: {@code 0-511:0,512-1023:1}); default even ranges. The shards record the
     * rule they were written with; a job whose rule differs refuses to start ({@code ./sluice reshard} moves rows).
     */
    public record Routing(ShardRouter.Hash hash, int buckets, int[] bucketToShard) implements Serializable {
        static Routing from(RawConfig raw, int shardCount) {
            ShardRouter.Hash hash = raw.parsed("routing.hash", ShardRouter.Hash.DEFAULT, "murmur3-32 or crc32", ShardRouter.Hash::of);
            int buckets = raw.integer("routing.buckets", 1024, 1, 1 << 20);
            String spec = raw.string("routing.bucket-map", null);
            int[] map = spec == null
                    ? ShardRouter.evenRanges(buckets, shardCount)
                    : raw.parsed("routing.bucket-map", null,
                            "ranges covering buckets 0.." + (buckets - 1) + " exactly once, each 'from-to:shard' with shard < " + shardCount,
                            s -> ShardRouter.parseBucketMap(s, buckets, shardCount));
            return new Routing(hash, buckets, map);
        }

        public ShardRouter router() {
            return new ShardRouter(hash, bucketToShard);
        }
    }

    /**
     * The subscription upsert job. {@code keyBy}: shuffle by subscription before coalescing, so every subtask
     * coalesces and writes even when the topic has fewer partitions than the job has subtasks; without it (the
     * default) each subtask coalesces and writes what its own partitions hold, with no shuffle. {@code allowStatelessStart}:
     * start without a checkpoint or savepoint although the job's consumer group has committed offsets.
     */
    public record Subscriptions(
            long flushIntervalMs,
            int flushMaxRows,
            int maxKeyBytes,
            int maxValueBytes,
            int maxIdBytes,
            int sourceEpoch,
            int parallelism,
            boolean keyBy,
            boolean allowStatelessStart) implements Serializable {
        static Subscriptions from(RawConfig raw) {
            return new Subscriptions(
                    raw.durationMs("subscriptions.flush-interval", 200, 10, 600_000),
                    raw.integer("subscriptions.flush-max-rows", 2000, 1, 1_000_000),
                    raw.integer("subscriptions.max-key-bytes", 256, 1, 1 << 20),
                    raw.integer("subscriptions.max-value-bytes", 4096, 1, 1 << 24),
                    // a btree index entry holds at most about 2,700 bytes; app_id and subscription_id share one
                    raw.integer("subscriptions.max-id-bytes", 512, 1, 1_300),
                    raw.integer("subscriptions.source-epoch", 0, 0, Integer.MAX_VALUE),
                    raw.integer("subscriptions.parallelism", 0, 0, 4096),
                    raw.bool("subscriptions.key-by", false),
                    raw.bool("subscriptions.allow-stateless-start", false));
        }
    }

    /**
     * The per-user window aggregation: tumbling event-time windows of {@code windowMs} per
     * (app, user, event name); running results every {@code emitIntervalMs}, the final one when the
     * watermark passes the window's end; events up to {@code allowedLatenessMs} after that still update
     * the row, later ones are dead letters. Watermarks trail the newest event time by
     * {@code outOfOrdernessMs}; a partition silent for {@code idlenessMs} stops holding them back once its source subtask
     * has nothing left to read (a partition waiting its turn must not look idle). The event source fetches at most
     * {@code partitionFetchBytes} of one partition at a time, so a busy subtask's partitions take turns in small steps.
     * An {@code occurred_at} more than {@code maxEventAgeMs} behind or {@code maxEventLeadMs} ahead of
     * the wall clock is implausible (a dead letter before it can move a watermark); 0 turns a bound off.
     */
    public record Aggregation(
            long windowMs,
            long emitIntervalMs,
            long outOfOrdernessMs,
            long idlenessMs,
            int partitionFetchBytes,
            long allowedLatenessMs,
            int bufferMaxEntries,
            long flushIntervalMs,
            int flushMaxRows,
            int parallelism,
            long maxEventAgeMs,
            long maxEventLeadMs,
            boolean allowStatelessStart) implements Serializable {
        static Aggregation from(RawConfig raw) {
            return new Aggregation(
                    raw.durationMs("aggregation.window", 60_000, 1_000, 31L * 86_400_000),
                    raw.durationMs("aggregation.emit-interval", 1_000, 10, 3_600_000),
                    raw.durationMs("aggregation.out-of-orderness", 5_000, 0, 86_400_000),
                    raw.durationMs("aggregation.idleness", 10_000, 0, 86_400_000),
                    raw.integer("aggregation.partition-fetch-bytes", 262_144, 16_384, 1_048_576),
                    raw.durationMs("aggregation.allowed-lateness", 60_000, 0, 31L * 86_400_000),
                    raw.integer("aggregation.buffer-max-entries", 100_000, 1, 10_000_000),
                    raw.durationMs("aggregation.flush-interval", 200, 10, 600_000),
                    raw.integer("aggregation.flush-max-rows", 2000, 1, 1_000_000),
                    raw.integer("aggregation.parallelism", 0, 0, 4096),
                    raw.durationMs("aggregation.max-event-age", 30L * 86_400_000, 0, 3650L * 86_400_000),
                    raw.durationMs("aggregation.max-event-lead", 300_000, 0, 3650L * 86_400_000),
                    raw.bool("aggregation.allow-stateless-start", false));
        }
    }

    /**
     * The push queue: jobs are written with Kafka transactions named {@code transactionalIdPrefix}-*
     * (unique per job on a cluster); {@code ceSource} is the CloudEvents {@code ce_source} header.
     */
    public record Push(String transactionalIdPrefix, String ceSource) implements Serializable {
        static Push from(RawConfig raw, Deployment deployment) {
            return new Push(
                    raw.string("push.transactional-id-prefix", deployment.id().isEmpty() ? "sluice-push" : "sluice-" + deployment.id() + "-push"),
                    raw.string("push.ce-source", "/sluice/campaigns"));
        }
    }

    /**
     * The Kafka → Sidekiq bridge (the {@code sidekiq-bridge} job; not every deployment runs it): where Redis is, which topic
     * it reads, how a record becomes a Sidekiq job (class, queue, {@code retry}, the record fields that make {@code args},
     * the field that is the {@code jid}; per (app, campaign) another class or queue), how long the once-per-job markers
     * live, and the queue length above which it stops taking records. The Redis password comes from
     * {@code sidekiq.redis-password} (or {@code SLUICE_SIDEKIQ_REDIS_PASSWORD}), never from the URL.
     */
    public record Sidekiq(String redisHost, int redisPort, int redisDatabase, String redisPassword, String topic, String jobClass,
                          String queue, String retry, List<String> args, String jidField, Map<String, Target> overrides,
                          int maxQueueLength, long dedupTtlMs, String markerPrefix, boolean epochMillis, int batchSize, int parallelism,
                          long connectTimeoutMs, long socketTimeoutMs, boolean startFromLatest) implements Serializable {
        /** Everything but the password. */
        @Override
        public String toString() {
            return "Sidekiq[redis=" + redisHost + ":" + redisPort + "/" + redisDatabase + (redisPassword == null ? "" : ", password=***") + ", topic=" + topic
                    + ", class=" + jobClass + ", queue=" + queue + ", overrides=" + overrides + ", args=" + args + ", jid=" + jidField
                    + ", maxQueueLength=" + maxQueueLength + ", dedupTtlMs=" + dedupTtlMs + ", startFromLatest=" + startFromLatest + "]";
        }

        /** A Sidekiq class and queue. */
        public record Target(String jobClass, String queue) implements Serializable {
        }

        /** The class and queue of the (app, campaign): an override for the pair, for the app ({@code app/*}), or the defaults. */
        public Target target(String appId, String campaignId) {
            Target t = overrides.get(appId + "/" + campaignId);
            if (t == null) {
                t = overrides.get(appId + "/*");
            }
            return t != null ? t : new Target(jobClass, queue);
        }

        /** Every queue the bridge may write: the default and the overrides' (what the limiter watches). */
        public List<String> queues() {
            java.util.TreeSet<String> q = new java.util.TreeSet<>();
            q.add(queue);
            overrides.values().forEach(t -> q.add(t.queue()));
            return List.copyOf(q);
        }

        static Sidekiq from(RawConfig raw, Deployment deployment, Kafka kafka) {
            String url = raw.string("sidekiq.redis-url", "redis://localhost:6379/0");
            String shown = url.contains("@") ? "(not shown: it has an '@', so it may carry a password)" : url;
            java.net.URI uri;
            try {
                uri = java.net.URI.create(url);
            } catch (IllegalArgumentException e) {
                throw raw.invalid("sidekiq.redis-url", shown, "redis://host:port/db");
            }
            if (uri.getUserInfo() != null || url.contains("@")) {
                throw new ConfigException("sidekiq.redis-url carries credentials; give the password in sidekiq.redis-password or the environment "
                        + "variable " + RawConfig.envName("sidekiq.redis-password") + " instead, so it is never printed with the URL");
            }
            if (!"redis".equals(uri.getScheme()) || uri.getHost() == null) {
                throw raw.invalid("sidekiq.redis-url", shown, "redis://host:port/db");
            }
            int db = 0;
            String path = uri.getPath() == null ? "" : uri.getPath().replace("/", "");
            if (!path.isEmpty()) {
                try {
                    db = Integer.parseInt(path);
                } catch (NumberFormatException e) {
                    throw raw.invalid("sidekiq.redis-url", shown, "redis://host:port/db with a database number");
                }
            }
            List<String> args = raw.list("sidekiq.args");
            if (args.isEmpty()) {
                args = List.of("app_id", "user_id", "campaign_id", "message", "job_id", "created_at");
            }
            String jobClass = raw.string("sidekiq.class", "PushWorker");
            String queue = raw.string("sidekiq.queue", "default");
            Map<String, Target> overrides = new java.util.LinkedHashMap<>();
            for (String o : raw.list("sidekiq.overrides")) {
                int eq = o.indexOf('=');
                int slash = o.indexOf('/');
                if (eq < 0 || slash < 0 || slash > eq) {
                    throw raw.invalid("sidekiq.overrides", o, "app_id/campaign_id=Class@queue (or app_id/*=..., Class alone, or @queue alone), comma-separated");
                }
                String target = o.substring(eq + 1).trim();
                int at = target.indexOf('@');
                String c = at < 0 ? target : target.substring(0, at);
                String q = at < 0 ? "" : target.substring(at + 1);
                overrides.put(o.substring(0, eq).trim(), new Target(c.isEmpty() ? jobClass : c, q.isEmpty() ? queue : q));
            }
            String retry = raw.string("sidekiq.retry", "true");
            if (!retry.equals("true") && !retry.equals("false") && !retry.matches("0|[1-9]\\d{0,5}")) {
                throw raw.invalid("sidekiq.retry", retry, "true, false or a number of retries");
            }
            String timestamps = raw.string("sidekiq.timestamps", "float-seconds");
            if (!timestamps.equals("float-seconds") && !timestamps.equals("epoch-millis")) {
                throw raw.invalid("sidekiq.timestamps", timestamps, "float-seconds (Sidekiq 6 and 7) or epoch-millis (Sidekiq 8)");
            }
            String startFrom = raw.string("sidekiq.start-from", "latest");
            if (!startFrom.equals("latest") && !startFrom.equals("earliest")) {
                throw raw.invalid("sidekiq.start-from", startFrom, "latest (only records written after the bridge's first start) or earliest "
                        + "(everything the topic still holds)");
            }
            return new Sidekiq(uri.getHost(), uri.getPort() < 0 ? 6379 : uri.getPort(), db, raw.string("sidekiq.redis-password", null),
                    raw.string("sidekiq.topic", kafka.pushQueueTopic()), jobClass, queue, retry, List.copyOf(args),
                    raw.string("sidekiq.jid-field", "job_id"), Map.copyOf(overrides),
                    raw.integer("sidekiq.max-queue-length", 10_000, 1, 100_000_000),
                    raw.durationMs("sidekiq.dedup-ttl", 7 * 86_400_000L, 60_000, 365 * 86_400_000L),
                    raw.string("sidekiq.marker-prefix", deployment.id().isEmpty() ? "sluice:jid:" : "sluice-" + deployment.id() + ":jid:"),
                    timestamps.equals("epoch-millis"),
                    raw.integer("sidekiq.batch-size", 500, 1, 10_000),
                    raw.integer("sidekiq.parallelism", 1, 1, 4096),
                    raw.durationMs("sidekiq.connect-timeout", 5_000, 100, 600_000),
                    raw.durationMs("sidekiq.socket-timeout", 10_000, 100, 600_000),
                    startFrom.equals("latest"));
        }
    }
}
