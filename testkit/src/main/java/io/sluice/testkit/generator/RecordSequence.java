package io.sluice.testkit.generator;

import io.sluice.core.avro.ConfluentWire;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.Campaign;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.model.UserEvent;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The generator's records, as a pure function of the settings and the seed: the same seed, settings
 * and epoch give byte-identical records in the same order, whatever the production rate. Starts with
 * the campaign definitions, then mixes user events and subscription updates. Event times advance
 * with the nominal rate from {@code epochMs}; a configured fraction is out of order (up to
 * {@code outOfOrderMaxMs} early) or late ({@code lateByMs} early). In hot-key mode every 10,000
 * records are followed by a burst of updates to one subscription of the busiest app. Malformed
 * records (not wire format, an unknown schema id, or a truncated body) replace a fraction of both
 * streams. An idle partition ({@code generator.idle-partition}) of {@code user-events} gets no event while event time is
 * in its idle span (its users are drawn again until one lands elsewhere), and then a late event first: a source
 * subtask that was idle, maybe across a restart, comes back with an event only the window operator's floor may know
 * is late. Every record is also fed to the {@link Oracle}.
 */
public final class RecordSequence {
    static final String[] EVENT_NAMES = {"open", "view", "purchase", "click", "add_to_cart", "search", "share", "login"};
    static final int PROPERTY_KEYS = 20;
    static final int BLOCK = 10_000;
    public static final String HOT_SUBSCRIPTION = "hot-subscription";
    public static final int UNKNOWN_SCHEMA_ID = 999_999;

    private final GeneratorConfig g;
    private final SluiceConfig.Kafka topics;
    /**
     * Late events ({@code generator.late-fraction}) start 10 s of event time into the run, when a job reading a live run
     * has a watermark, so the oracle can count each as late. A job draining a backlog may take more records before its
     * first watermark.
     */
    public static final long LATE_AFTER_MS = 10_000;
    private final long epochMs;
    private final SplittableRandom random;
    private final Zipf apps;
    private final Zipf users;
    private final Zipf subscriptions;
    private final Zipf names;
    private final ConfluentWire eventWire;
    private final ConfluentWire updateWire;
    private final ConfluentWire campaignWire;
    private final Oracle oracle;
    private final Deque<GeneratedRecord> pending = new ArrayDeque<>();
    private final int partitions;
    private long index;
    private long hotCounter;
    private boolean idleEnded;

    public RecordSequence(SluiceConfig config, GeneratorConfig generator, Map<String, Integer> schemaIds, long epochMs, Oracle oracle) {
        this.g = generator;
        this.topics = config.kafka();
        this.epochMs = epochMs;
        this.partitions = config.kafka().partitions();
        if (g.idlePartition() >= 0 && (g.idlePartition() >= partitions || partitions < 2 || g.idleForMs() <= 0)) {
            throw new IllegalArgumentException("generator.idle-partition " + g.idlePartition() + " with kafka.partitions " + partitions
                    + " and generator.idle-for " + g.idleForMs() + " ms: expected a partition below kafka.partitions (at least 2) and an idle-for above 0");
        }
        this.random = new SplittableRandom(g.seed());
        this.apps = new Zipf(g.apps(), g.zipfExponent());
        this.users = new Zipf(g.users(), g.zipfExponent());
        this.subscriptions = new Zipf(g.subscriptionsPerApp(), g.zipfExponent());
        this.names = new Zipf(EVENT_NAMES.length, 1.0);
        this.eventWire = new ConfluentWire(id(schemaIds, topics.userEventsTopic()), SluiceAvro.USER_EVENT.schema());
        this.updateWire = new ConfluentWire(id(schemaIds, topics.subscriptionUpdatesTopic()), SluiceAvro.SUBSCRIPTION_UPDATE.schema());
        this.campaignWire = new ConfluentWire(id(schemaIds, topics.campaignsTopic()), SluiceAvro.CAMPAIGN.schema());
        this.oracle = oracle;
        for (Campaign c : campaigns()) {
            oracle.recordOther(topics.campaignsTopic());
            pending.add(new GeneratedRecord(topics.campaignsTopic(), utf8(c.key()), campaignWire.encode(SluiceAvro.CAMPAIGN.toAvro(c)), false));
        }
    }

    private static int id(Map<String, Integer> ids, String topic) {
        Integer id = ids.get(topic);
        if (id == null) {
            throw new IllegalArgumentException("no schema id registered for topic " + topic);
        }
        return id;
    }

    /** The campaign definitions: one per busiest app, "3 purchases within 10 minutes" style. */
    public List<Campaign> campaigns() {
        List<Campaign> out = new ArrayList<>();
        for (int i = 0; i < g.campaigns(); i++) {
            String app = appId(1 + (i % g.apps()));
            out.add(new Campaign("campaign-" + i, app, EVENT_NAMES[2 + (i % 3)], 3, 600_000, "Thanks for shopping! (campaign " + i + ")", g.campaignMaxPerSecond(), true));
        }
        return out;
    }

    public static String appId(long rank) {
        return "app-" + (rank - 1);
    }

    /**
     * Records generated, and so already in the oracle, but not handed out yet (the campaigns at the start, the rest of a
     * hot-key burst): a run that ends must send these first, or the oracle holds records that were never sent.
     */
    public boolean hasPending() {
        return !pending.isEmpty();
    }

    /** Records produced so far, campaigns excluded. */
    public long index() {
        return index;
    }

    public GeneratedRecord next() {
        if (!pending.isEmpty()) {
            return pending.poll();
        }
        long i = index++;
        if (g.hotKey() && i > 0 && i % BLOCK == 0) {
            int burst = (int) (BLOCK * g.hotKeyFraction());
            for (int b = 0; b < burst; b++) {
                pending.add(hotUpdate(i));
            }
            if (!pending.isEmpty()) {
                pending.add(normal(i));
                return pending.poll();
            }
        }
        return normal(i);
    }

    private GeneratedRecord normal(long i) {
        boolean update = random.nextDouble() < g.updateFraction();
        boolean malformed = g.malformedFraction() > 0 && random.nextDouble() < g.malformedFraction();
        long nominal = epochMs + (long) (i * 1000 / g.rate());
        return update ? update(nominal, malformed) : event(nominal, malformed);
    }

    private GeneratedRecord event(long nominal, boolean malformed) {
        String app = appId(apps.sample(random));
        String user = "user-" + (users.sample(random) - 1);
        boolean idle = g.idlePartition() >= 0 && nominal >= epochMs + g.idleFromMs() && nominal < epochMs + g.idleFromMs() + g.idleForMs();
        for (int draws = 0; idle && partitionOf(UserEvent.keyOf(app, user)) == g.idlePartition(); draws++) {
            if (draws == 10_000) {
                throw new IllegalStateException("10,000 draws of app and user all landed in idle partition " + g.idlePartition());
            }
            app = appId(apps.sample(random));
            user = "user-" + (users.sample(random) - 1);
        }
        boolean back = g.idlePartition() >= 0 && !idle && !idleEnded && nominal >= epochMs + g.idleFromMs()
                && partitionOf(UserEvent.keyOf(app, user)) == g.idlePartition();
        idleEnded |= back;
        String name = EVENT_NAMES[(int) names.sample(random) - 1];
        long occurred = nominal;
        double r = random.nextDouble();
        // none before a job can have a watermark; the first event of the idle partition when it comes back is late
        boolean late = (r < g.lateFraction() || back) && nominal >= epochMs + LATE_AFTER_MS;
        malformed &= !back;
        if (late) {
            occurred = nominal - g.lateByMs() - random.nextLong(1000);
        } else if (r < g.lateFraction() + g.outOfOrderFraction() && g.outOfOrderMaxMs() > 0) {
            occurred = nominal - random.nextLong(g.outOfOrderMaxMs());
        }
        Double value = random.nextInt(4) == 0 ? null : Math.round(random.nextDouble() * 10_000) / 100.0;
        UserEvent e = new UserEvent(app, user, name, occurred, value, null);
        byte[] key = utf8(e.key());
        if (malformed) {
            oracle.recordMalformed(topics.userEventsTopic());
            return new GeneratedRecord(topics.userEventsTopic(), key, corrupt(eventWire.encode(SluiceAvro.USER_EVENT.toAvro(e))), true);
        }
        if (back && late) {
            oracle.recordIdleReturn(e);
        }
        if (late) {
            oracle.recordLateEvent(topics.userEventsTopic(), e);
        } else {
            oracle.recordEvent(topics.userEventsTopic(), e);
        }
        return new GeneratedRecord(topics.userEventsTopic(), key, eventWire.encode(SluiceAvro.USER_EVENT.toAvro(e)), false);
    }

    private GeneratedRecord update(long nominal, boolean malformed) {
        String app = appId(apps.sample(random));
        String sub = "sub-" + (subscriptions.sample(random) - 1);
        Map<String, String> set = new LinkedHashMap<>();
        int sets = 1 + random.nextInt(3);
        for (int k = 0; k < sets; k++) {
            set.put("k" + random.nextInt(PROPERTY_KEYS), "v" + random.nextInt(1_000_000));
        }
        List<String> unset = new ArrayList<>();
        if (random.nextInt(5) == 0) {
            String k = "k" + random.nextInt(PROPERTY_KEYS);
            if (!set.containsKey(k)) {
                unset.add(k);
            }
        }
        SubscriptionUpdate u = new SubscriptionUpdate(app, sub, set, unset, nominal);
        return updateRecord(u, malformed);
    }

    private GeneratedRecord hotUpdate(long i) {
        long n = hotCounter++;
        long nominal = epochMs + (long) (i * 1000 / g.rate());
        Map<String, String> set = new LinkedHashMap<>();
        set.put("counter", Long.toString(n));
        set.put("k" + (n % PROPERTY_KEYS), "hot-" + n);
        List<String> unset = n % 7 == 0 ? List.of("k" + ((n + 3) % PROPERTY_KEYS)) : List.of();
        return updateRecord(new SubscriptionUpdate(appId(1), HOT_SUBSCRIPTION, set, unset, nominal), false);
    }

    private GeneratedRecord updateRecord(SubscriptionUpdate u, boolean malformed) {
        byte[] key = utf8(u.appId());
        byte[] value = updateWire.encode(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(u));
        if (malformed) {
            oracle.recordMalformed(topics.subscriptionUpdatesTopic());
            return new GeneratedRecord(topics.subscriptionUpdatesTopic(), key, corrupt(value), true);
        }
        oracle.recordUpdate(topics.subscriptionUpdatesTopic(), u);
        return new GeneratedRecord(topics.subscriptionUpdatesTopic(), key, value, false);
    }

    /** One of three ways real producers get it wrong. */
    private byte[] corrupt(byte[] good) {
        switch (random.nextInt(3)) {
            case 0: { // not the wire format at all (e.g. JSON sent by mistake)
                return "{\"oops\":\"json\"}".getBytes(StandardCharsets.UTF_8);
            }
            case 1: { // a schema id the registry never issued
                byte[] b = good.clone();
                b[1] = (byte) (UNKNOWN_SCHEMA_ID >>> 24);
                b[2] = (byte) (UNKNOWN_SCHEMA_ID >>> 16);
                b[3] = (byte) (UNKNOWN_SCHEMA_ID >>> 8);
                b[4] = (byte) UNKNOWN_SCHEMA_ID;
                return b;
            }
            default: { // truncated mid-record
                return Arrays.copyOf(good, 5 + (good.length - 5) / 3);
            }
        }
    }

    /** The partition Kafka's default partitioner picks for a record key, of the configured {@code kafka.partitions}. */
    private int partitionOf(String key) {
        return org.apache.kafka.common.utils.Utils.toPositive(org.apache.kafka.common.utils.Utils.murmur2(utf8(key))) % partitions;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
