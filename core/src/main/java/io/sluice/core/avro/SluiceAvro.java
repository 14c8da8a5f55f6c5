package io.sluice.core.avro;

import io.sluice.core.model.Campaign;
import io.sluice.core.model.PushJob;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.core.model.UserEvent;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericData;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;
import org.apache.flink.avro.shaded.org.apache.avro.io.ResolvingDecoder;

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The one place where Sluice touches Avro. The registry format jar carries a <em>relocated</em> Avro
 * ({@code org.apache.flink.avro.shaded.org.apache.avro}), so Sluice keeps Avro at the edge: the
 * {@code .avsc} files under {@code avro/} are the source of truth, records are decoded to and from
 * {@link GenericRecord} of that relocated Avro here, and everything else works with the plain Java
 * records of {@code io.sluice.core.model}. A topic on the hot path may also have a {@link DirectReader}, which
 * reads the reader schema's fields straight into the Java record, skipping the {@link GenericRecord} (see
 * {@link RegistryDecoder}); it must give what {@link #fromAvro} gives for the same bytes.
 *
 * @param <T> the Java record the topic carries
 */
public final class SluiceAvro<T> implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final SluiceAvro<UserEvent> USER_EVENT = new SluiceAvro<>("user_event.avsc", SluiceAvro::userEventOf, SluiceAvro::userEventTo);
    public static final SluiceAvro<SubscriptionUpdate> SUBSCRIPTION_UPDATE =
            new SluiceAvro<>("subscription_update.avsc", SluiceAvro::subscriptionUpdateOf, SluiceAvro::subscriptionUpdateTo,
                    SluiceAvro::readSubscriptionUpdate);
    public static final SluiceAvro<Campaign> CAMPAIGN = new SluiceAvro<>("campaign.avsc", SluiceAvro::campaignOf, SluiceAvro::campaignTo);
    public static final SluiceAvro<PushJob> PUSH_JOB = new SluiceAvro<>("push_job.avsc", SluiceAvro::pushJobOf, SluiceAvro::pushJobTo);

    private final String resource;
    private final SerializableFunction<GenericRecord, T> fromAvro;
    private final SerializableBiFunction<T, Schema, GenericRecord> toAvro;
    private final DirectReader<T> direct;
    private transient Schema schema;

    private SluiceAvro(String resource, SerializableFunction<GenericRecord, T> fromAvro, SerializableBiFunction<T, Schema, GenericRecord> toAvro) {
        this(resource, fromAvro, toAvro, null);
    }

    private SluiceAvro(String resource, SerializableFunction<GenericRecord, T> fromAvro, SerializableBiFunction<T, Schema, GenericRecord> toAvro,
                       DirectReader<T> direct) {
        this.resource = resource;
        this.fromAvro = fromAvro;
        this.toAvro = toAvro;
        this.direct = direct;
    }

    /**
     * Reads one record's fields, in the order {@link ResolvingDecoder#readFieldOrder} gives, straight into the Java
     * record. The resolving decoder turns any compatible writer schema into the reader schema's fields: it skips
     * fields the reader does not have, supplies defaults for those the writer lacks, promotes types and resolves
     * writer unions.
     */
    @FunctionalInterface
    public interface DirectReader<T> extends Serializable {
        T read(ResolvingDecoder in) throws IOException;
    }

    /** The topic's direct reader, or null if its records go through a {@link GenericRecord}. */
    public DirectReader<T> direct() {
        return direct;
    }

    /** The schema text exactly as in the repo's {@code .avsc} file. */
    public String schemaJson() {
        try (InputStream in = SluiceAvro.class.getResourceAsStream("/avro/" + resource)) {
            if (in == null) {
                throw new IllegalStateException("schema resource /avro/" + resource + " is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public Schema schema() {
        if (schema == null) {
            schema = new Schema.Parser().parse(schemaJson());
        }
        return schema;
    }

    public T fromAvro(GenericRecord r) {
        return fromAvro.apply(r);
    }

    public GenericRecord toAvro(T value) {
        return toAvro.apply(value, schema());
    }

    public String name() {
        return schema().getName();
    }

    // ---- mappings ----

    private static UserEvent userEventOf(GenericRecord r) {
        Object value = r.get("value");
        return new UserEvent(str(r, "app_id"), str(r, "user_id"), str(r, "name"), (Long) r.get("occurred_at"),
                value == null ? null : ((Number) value).doubleValue(), r.get("properties") == null ? null : stringMap(r.get("properties")));
    }

    private static GenericRecord userEventTo(UserEvent e, Schema s) {
        GenericRecord r = new GenericData.Record(s);
        r.put("app_id", e.appId());
        r.put("user_id", e.userId());
        r.put("name", e.name());
        r.put("occurred_at", e.occurredAt());
        r.put("value", e.value());
        r.put("properties", e.properties());
        return r;
    }

    private static SubscriptionUpdate subscriptionUpdateOf(GenericRecord r) {
        List<String> unset = new ArrayList<>();
        Object u = r.get("unset");
        if (u != null) {
            for (Object o : (Iterable<?>) u) {
                unset.add(o.toString());
            }
        }
        return new SubscriptionUpdate(str(r, "app_id"), str(r, "subscription_id"), stringMap(r.get("set")), unset, (Long) r.get("sent_at"));
    }

    /** {@link #subscriptionUpdateOf} without the {@link GenericRecord}: the same record for the same bytes. */
    private static SubscriptionUpdate readSubscriptionUpdate(ResolvingDecoder in) throws IOException {
        String appId = null;
        String subscriptionId = null;
        Map<String, String> set = null;
        List<String> unset = null;
        long sentAt = 0;
        for (Schema.Field f : in.readFieldOrder()) {
            switch (f.name()) {
                case "app_id" -> appId = in.readString();
                case "subscription_id" -> subscriptionId = in.readString();
                case "set" -> {
                    set = new LinkedHashMap<>();
                    for (long n = in.readMapStart(); n != 0; n = in.mapNext()) {
                        for (long i = 0; i < n; i++) {
                            String key = in.readString();
                            set.put(key, in.readString());
                        }
                    }
                }
                case "unset" -> {
                    unset = new ArrayList<>();
                    for (long n = in.readArrayStart(); n != 0; n = in.arrayNext()) {
                        for (long i = 0; i < n; i++) {
                            unset.add(in.readString());
                        }
                    }
                }
                case "sent_at" -> sentAt = in.readLong();
                default -> throw new IllegalStateException("subscription_update.avsc has a field " + f.name() + " the direct reader does not know");
            }
        }
        return new SubscriptionUpdate(appId, subscriptionId, set, unset, sentAt);
    }

    private static GenericRecord subscriptionUpdateTo(SubscriptionUpdate u, Schema s) {
        GenericRecord r = new GenericData.Record(s);
        r.put("app_id", u.appId());
        r.put("subscription_id", u.subscriptionId());
        r.put("set", u.set());
        r.put("unset", u.unset());
        r.put("sent_at", u.sentAt());
        return r;
    }

    private static Campaign campaignOf(GenericRecord r) {
        return new Campaign(str(r, "campaign_id"), str(r, "app_id"), str(r, "event_name"), (Integer) r.get("min_count"),
                (Long) r.get("window"), str(r, "message"), (Integer) r.get("max_per_second"), (Boolean) r.get("active"));
    }

    private static GenericRecord campaignTo(Campaign c, Schema s) {
        GenericRecord r = new GenericData.Record(s);
        r.put("campaign_id", c.campaignId());
        r.put("app_id", c.appId());
        r.put("event_name", c.eventName());
        r.put("min_count", c.minCount());
        r.put("window", c.windowMs());
        r.put("message", c.message());
        r.put("max_per_second", c.maxPerSecond());
        r.put("active", c.active());
        return r;
    }

    private static PushJob pushJobOf(GenericRecord r) {
        return new PushJob(str(r, "job_id"), str(r, "app_id"), str(r, "user_id"), str(r, "campaign_id"), str(r, "message"), (Long) r.get("created_at"));
    }

    private static GenericRecord pushJobTo(PushJob j, Schema s) {
        GenericRecord r = new GenericData.Record(s);
        r.put("job_id", j.jobId());
        r.put("app_id", j.appId());
        r.put("user_id", j.userId());
        r.put("campaign_id", j.campaignId());
        r.put("message", j.message());
        r.put("created_at", j.createdAt());
        return r;
    }

    private static String str(GenericRecord r, String field) {
        Object v = r.get(field);
        return v == null ? null : v.toString();
    }

    private static Map<String, String> stringMap(Object avroMap) {
        Map<String, String> out = new LinkedHashMap<>();
        if (avroMap != null) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) avroMap).entrySet()) {
                out.put(e.getKey().toString(), e.getValue() == null ? null : e.getValue().toString());
            }
        }
        return out;
    }

    interface SerializableFunction<A, B> extends Function<A, B>, Serializable {
    }

    interface SerializableBiFunction<A, B, C> extends java.util.function.BiFunction<A, B, C>, Serializable {
    }
}
