package io.sluice.jobs.sidekiq;

import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.common.Json;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericEnumSymbol;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericFixed;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericRecord;

import java.io.Serializable;
import java.util.HexFormat;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.util.Collection;
import java.util.Map;

/**
 * How a record of the bridged topic becomes a Sidekiq job, in the payload format of Sidekiq 6 and 7 (or with
 * {@code sidekiq.timestamps: epoch-millis}, Sidekiq 8's): {@code class} and {@code queue} from the configuration (per
 * (app, campaign) when the record has {@code app_id} and {@code campaign_id}), {@code args} the named fields in order,
 * {@code jid} the {@code sidekiq.jid-field}, {@code retry}, and {@code created_at} from the record's {@code created_at}
 * (epoch ms) if it has one, else the moment it is mapped. A record that cannot be a job (a field missing from its
 * schema, a null {@code jid}, bytes, a non-finite number or more than {@value #MAX_DEPTH} levels of nesting in
 * {@code args}, a {@code created_at} that is not a number) gets the reason instead, for its dead letter.
 */
public final class SidekiqMapping implements Serializable {
    private static final long serialVersionUID = 1L;
    /** Sidekiq's own jids are 24 hex characters; anything longer is refused as a marker key and a jid. */
    static final int MAX_JID_LENGTH = 200;

    private final SluiceConfig.Sidekiq config;

    public SidekiqMapping(SluiceConfig.Sidekiq config) {
        this.config = config;
    }

    /** The job, or the reason the record cannot be one. */
    public record Result(SidekiqPush push, String problem) {
    }

    public Result map(GenericRecord r) {
        if (r == null) { // a writer schema that is a union with null, and a null value
            return problem("its value decodes to null (a writer schema that is a union with \"null\"): there is no record to make a job of");
        }
        Schema schema = r.getSchema();
        Object jidValue = field(r, config.jidField());
        // bytes as lowercase hex: a ByteBuffer's own text is its class and size, the same for every record of a length
        String jid = jidValue == MISSING || jidValue == null ? ""
                : jidValue instanceof ByteBuffer bytes ? HexFormat.of().formatHex(bytesOf(bytes)) : jidValue.toString();
        if (jid.isEmpty()) {
            return problem("its " + config.jidField() + " (sidekiq.jid-field, the jid) is " + (jidValue == MISSING ? "not in schema " + schema.getFullName()
                    : "empty") + ": without it a replay could not be told from a new job");
        }
        if (jidValue instanceof Boolean) { // two values: every record after the first two would be a skipped "replay"
            return problem("its " + config.jidField() + " (sidekiq.jid-field, the jid) is a boolean; a jid must tell each job from every other");
        }
        if (jid.length() > MAX_JID_LENGTH) {
            return problem("its " + config.jidField() + " is " + jid.length() + " characters, over " + MAX_JID_LENGTH);
        }
        Object app = field(r, "app_id");
        Object campaign = field(r, "campaign_id");
        SluiceConfig.Sidekiq.Target target = app instanceof CharSequence && campaign instanceof CharSequence
                ? config.target(app.toString(), campaign.toString()) : config.target("", "");
        StringBuilder b = new StringBuilder(256).append("{\"class\":");
        Json.string(b, target.jobClass()).append(",\"args\":[");
        for (int i = 0; i < config.args().size(); i++) {
            String name = config.args().get(i);
            Object v = field(r, name);
            if (v == MISSING) {
                return problem("field " + name + " of sidekiq.args is not in schema " + schema.getFullName());
            }
            if (i > 0) {
                b.append(',');
            }
            String bad = json(b, v);
            if (bad != null) {
                return problem("field " + name + " of sidekiq.args " + bad);
            }
        }
        b.append("],\"retry\":").append(config.retry()).append(",\"queue\":");
        Json.string(b, target.queue()).append(",\"jid\":");
        Json.string(b, jid).append(",\"created_at\":");
        Object created = field(r, "created_at");
        long createdAt;
        if (created == MISSING || created == null) {
            createdAt = System.currentTimeMillis();
        } else if (created instanceof Long || created instanceof Integer) {
            createdAt = ((Number) created).longValue();
        } else {
            return problem("its created_at is a " + created.getClass().getSimpleName() + ", not epoch milliseconds");
        }
        timestamp(b, createdAt, config.epochMillis());
        return new Result(new SidekiqPush(jid, target.queue(), b.toString()), null);
    }

    /** Sidekiq 6/7 timestamps are float epoch seconds; Sidekiq 8's integer epoch milliseconds. */
    static StringBuilder timestamp(StringBuilder b, long epochMs, boolean millis) {
        return millis ? b.append(epochMs) : b.append(BigDecimal.valueOf(epochMs, 3).toPlainString());
    }

    private static Result problem(String reason) {
        return new Result(null, "the record cannot be a Sidekiq job: " + reason);
    }

    private static final Object MISSING = new Object();

    private static byte[] bytesOf(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    private static Object field(GenericRecord r, String name) {
        return r.getSchema().getField(name) == null ? MISSING : r.get(name);
    }

    /** Deeper args than this are refused (a recursive schema could otherwise exhaust the stack). */
    static final int MAX_DEPTH = 32;

    /** Appends {@code v} as JSON; returns why it has no JSON form, or null. */
    private static String json(StringBuilder b, Object v) {
        return json(b, v, 0);
    }

    private static String json(StringBuilder b, Object v, int depth) {
        if (depth > MAX_DEPTH) {
            return "nests deeper than " + MAX_DEPTH + " levels";
        }
        if (v == null) {
            b.append("null");
        } else if (v instanceof CharSequence || v instanceof GenericEnumSymbol<?>) {
            Json.string(b, v.toString());
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) {
            b.append(v);
        } else if (v instanceof Float || v instanceof Double) {
            double d = ((Number) v).doubleValue();
            if (!Double.isFinite(d)) {
                return "is " + d + ", which JSON cannot carry";
            }
            b.append(d);
        } else if (v instanceof ByteBuffer || v instanceof GenericFixed) {
            return "is bytes, which have no JSON form in Sidekiq's args";
        } else if (v instanceof GenericRecord nested) {
            b.append('{');
            boolean first = true;
            for (Schema.Field f : nested.getSchema().getFields()) {
                if (!first) {
                    b.append(',');
                }
                first = false;
                Json.string(b, f.name()).append(':');
                String bad = json(b, nested.get(f.name()), depth + 1);
                if (bad != null) {
                    return "." + f.name() + " " + bad;
                }
            }
            b.append('}');
        } else if (v instanceof Map<?, ?> map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!first) {
                    b.append(',');
                }
                first = false;
                Json.string(b, String.valueOf(e.getKey())).append(':');
                String bad = json(b, e.getValue(), depth + 1);
                if (bad != null) {
                    return "[" + e.getKey() + "] " + bad;
                }
            }
            b.append('}');
        } else if (v instanceof Collection<?> list) {
            b.append('[');
            int i = 0;
            for (Object item : list) {
                if (i > 0) {
                    b.append(',');
                }
                String bad = json(b, item, depth + 1);
                if (bad != null) {
                    return "[" + i + "] " + bad;
                }
                i++;
            }
            b.append(']');
        } else {
            return "is a " + v.getClass().getSimpleName() + ", which has no JSON form in Sidekiq's args";
        }
        return null;
    }
}
