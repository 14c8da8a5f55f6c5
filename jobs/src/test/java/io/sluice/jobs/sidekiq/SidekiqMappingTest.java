package io.sluice.jobs.sidekiq;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.config.ConfigException;
import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.PushJob;
import org.apache.flink.avro.shaded.org.apache.avro.Schema;
import org.apache.flink.avro.shaded.org.apache.avro.generic.GenericData;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A record as a Sidekiq job: the payload Sidekiq 6/7 (or 8) expects, the overrides, and the reasons a record cannot be one. */
class SidekiqMappingTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static SluiceConfig.Sidekiq config(Map<String, String> keys) {
        RawConfig raw = RawConfig.empty().put("kafka.bootstrap", "x:1", "t").put("registry.url", "http://x", "t")
                .put("shards.urls", "jdbc:postgresql://x/a", "t").put("deployment.id", "t", "t");
        keys.forEach((k, v) -> raw.put(k, v, "t"));
        SluiceConfig c = SluiceConfig.from(raw);
        raw.rejectUnread();
        return c.sidekiq();
    }

    /** The payload as the sink stores it: the head plus enqueued_at. */
    private static JsonNode payload(SidekiqPush p, boolean millis) throws Exception {
        StringBuilder b = new StringBuilder(p.payloadHead()).append(",\"enqueued_at\":");
        SidekiqMapping.timestamp(b, 1_700_000_001_500L, millis).append('}');
        return JSON.readTree(b.toString());
    }

    @Test
    void aPushJobBecomesASidekiq6JobWithFloatSecondTimestamps() throws Exception {
        PushJob job = new PushJob("0123456789abcdef01234567", "app-1", "u-1", "welcome", "Hi \"there\"\n✓", 1_700_000_000_123L);
        SidekiqMapping.Result r = new SidekiqMapping(config(Map.of())).map(SluiceAvro.PUSH_JOB.toAvro(job));
        assertThat(r.problem()).isNull();
        assertThat(r.push().jid()).isEqualTo(job.jobId());
        assertThat(r.push().queue()).isEqualTo("default");
        JsonNode p = payload(r.push(), false);
        assertThat(p.path("class").asText()).isEqualTo("PushWorker");
        assertThat(p.path("queue").asText()).isEqualTo("default");
        assertThat(p.path("jid").asText()).isEqualTo(job.jobId());
        assertThat(p.path("retry").asBoolean()).isTrue();
        assertThat(p.path("args").toString()).isEqualTo("[\"app-1\",\"u-1\",\"welcome\",\"Hi \\\"there\\\"\\n✓\",\"0123456789abcdef01234567\",1700000000123]");
        assertThat(p.path("created_at").isDouble()).as("created_at is float epoch seconds").isTrue();
        assertThat(p.path("created_at").asDouble()).isEqualTo(1_700_000_000.123);
        assertThat(p.path("enqueued_at").asDouble()).isEqualTo(1_700_000_001.5);
    }

    @Test
    void overridesPickClassAndQueuePerAppAndCampaignAndSidekiq8GetsMilliseconds() throws Exception {
        SluiceConfig.Sidekiq c = config(Map.of("sidekiq.overrides", "app-1/vip=VipWorker@critical, app-2/*=@bulk", "sidekiq.timestamps", "epoch-millis",
                "sidekiq.args", "user_id,message", "sidekiq.retry", "5"));
        assertThat(c.queues()).containsExactly("bulk", "critical", "default");
        SidekiqMapping m = new SidekiqMapping(c);
        JsonNode vip = payload(m.map(SluiceAvro.PUSH_JOB.toAvro(new PushJob("j1", "app-1", "u", "vip", "m", 1_000L))).push(), true);
        assertThat(vip.path("class").asText() + "@" + vip.path("queue").asText()).isEqualTo("VipWorker@critical");
        assertThat(vip.path("created_at").isIntegralNumber()).as("Sidekiq 8: integer epoch milliseconds").isTrue();
        assertThat(vip.path("created_at").asLong()).isEqualTo(1_000L);
        assertThat(vip.path("enqueued_at").asLong()).isEqualTo(1_700_000_001_500L);
        assertThat(vip.path("retry").asInt()).isEqualTo(5);
        assertThat(vip.path("args").toString()).isEqualTo("[\"u\",\"m\"]");
        JsonNode bulk = payload(m.map(SluiceAvro.PUSH_JOB.toAvro(new PushJob("j2", "app-2", "u", "any", "m", 1L))).push(), true);
        assertThat(bulk.path("class").asText() + "@" + bulk.path("queue").asText()).isEqualTo("PushWorker@bulk");
        JsonNode other = payload(m.map(SluiceAvro.PUSH_JOB.toAvro(new PushJob("j3", "app-1", "u", "welcome", "m", 1L))).push(), true);
        assertThat(other.path("class").asText() + "@" + other.path("queue").asText()).isEqualTo("PushWorker@default");
    }

    @Test
    void timestampsBeforeTheEpochAreStillNumbers() throws Exception {
        assertThat(SidekiqMapping.timestamp(new StringBuilder(), -1_500, false).toString()).isEqualTo("-1.500");
        assertThat(SidekiqMapping.timestamp(new StringBuilder(), 5, false).toString()).isEqualTo("0.005");
        JsonNode p = payload(new SidekiqMapping(config(Map.of())).map(SluiceAvro.PUSH_JOB.toAvro(new PushJob("j", "a", "u", "c", "m", -1_500L))).push(), false);
        assertThat(p.path("created_at").asDouble()).isEqualTo(-1.5);
    }

    @Test
    void recordsThatCannotBeJobsGetTheirReason() {
        Schema schema = new Schema.Parser().parse("""
                {"type":"record","name":"Odd","fields":[{"name":"job_id","type":["null","string"]},{"name":"app_id","type":"string"},
                 {"name":"blob","type":"bytes"},{"name":"score","type":"double"}]}""");
        GenericData.Record r = new GenericData.Record(schema);
        r.put("job_id", "j");
        r.put("app_id", "a");
        r.put("blob", ByteBuffer.wrap(new byte[] {1}));
        r.put("score", Double.NaN);
        assertThat(new SidekiqMapping(config(Map.of())).map(r).problem()).contains("field user_id of sidekiq.args is not in schema Odd");
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "app_id,blob"))).map(r).problem()).contains("field blob of sidekiq.args is bytes");
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "score"))).map(r).problem()).contains("field score of sidekiq.args is NaN");
        assertThatThrownBy(() -> config(Map.of("sidekiq.retry", "05"))).isInstanceOf(ConfigException.class).hasMessageContaining("sidekiq.retry");
        Schema odd = new Schema.Parser().parse("""
                {"type":"record","name":"Odder","fields":[{"name":"job_id","type":"string"},{"name":"created_at","type":"string"},
                 {"name":"deep","type":["null",{"type":"array","items":{"type":"array","items":["null","string"]}}]}]}""");
        GenericData.Record o = new GenericData.Record(odd);
        o.put("job_id", "j");
        o.put("created_at", "yesterday");
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "job_id"))).map(o).problem()).contains("its created_at is a String, not epoch milliseconds");
        Object nested = java.util.List.of("x");
        for (int i = 0; i < SidekiqMapping.MAX_DEPTH + 2; i++) {
            nested = java.util.List.of(nested);
        }
        GenericData.Record deep = new GenericData.Record(odd);
        deep.put("job_id", "j");
        deep.put("deep", nested);
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "deep"))).map(deep).problem()).contains("nests deeper than " + SidekiqMapping.MAX_DEPTH);
        r.put("job_id", null);
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "app_id"))).map(r).problem()).contains("job_id (sidekiq.jid-field, the jid) is empty");
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "app_id", "sidekiq.jid-field", "id"))).map(r).problem())
                .contains("id (sidekiq.jid-field, the jid) is not in schema Odd");
    }

    @Test
    void aRedisUrlWithAPasswordIsRefusedWithoutPrintingIt() {
        assertThatThrownBy(() -> config(Map.of("sidekiq.redis-url", "redis://:s3cret@host:6379/0")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("sidekiq.redis-password").hasMessageNotContaining("s3cret");
        SluiceConfig.Sidekiq c = config(Map.of("sidekiq.redis-url", "redis://cache.internal:6380/3", "sidekiq.redis-password", "pw"));
        assertThat(c.redisHost() + ":" + c.redisPort() + "/" + c.redisDatabase()).isEqualTo("cache.internal:6380/3");
        assertThat(c.redisPassword()).isEqualTo("pw");
    }

    /**
     * A jid field of type bytes printed the same text for every record ("java.nio.HeapByteBuffer[pos=0 lim=16 cap=16]"), so
     * each record after the first was skipped as a replay of it: bytes are hex now. A boolean jid is a dead letter's reason,
     * as is a value that decodes to null.
     */
    @Test
    void aBytesJidIsItsHexABooleanJidAndANullRecordAreRefused() {
        Schema schema = new Schema.Parser().parse("""
                {"type":"record","name":"Binary","fields":[{"name":"id","type":"bytes"},{"name":"flag","type":"boolean"},
                 {"name":"n","type":"long"}]}""");
        GenericData.Record r = new GenericData.Record(schema);
        r.put("id", ByteBuffer.wrap(new byte[] {0x01, (byte) 0xab, 0x7f}));
        r.put("flag", true);
        r.put("n", 42L);
        SidekiqMapping.Result byBytes = new SidekiqMapping(config(Map.of("sidekiq.args", "n", "sidekiq.jid-field", "id"))).map(r);
        assertThat(byBytes.problem()).isNull();
        assertThat(byBytes.push().jid()).isEqualTo("01ab7f");
        r.put("id", ByteBuffer.wrap(new byte[] {0x01, (byte) 0xab, 0x7e}));
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "n", "sidekiq.jid-field", "id"))).map(r).push().jid())
                .as("another value of the same length, another jid").isEqualTo("01ab7e");
        r.put("id", ByteBuffer.wrap(new byte[0]));
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "n", "sidekiq.jid-field", "id"))).map(r).problem())
                .as("no bytes: no jid").contains("id (sidekiq.jid-field, the jid) is empty");
        assertThat(new SidekiqMapping(config(Map.of("sidekiq.args", "n", "sidekiq.jid-field", "flag"))).map(r).problem())
                .contains("flag (sidekiq.jid-field, the jid) is a boolean");
        SidekiqMapping.Result byNumber = new SidekiqMapping(config(Map.of("sidekiq.args", "n", "sidekiq.jid-field", "n"))).map(r);
        assertThat(byNumber.problem()).isNull();
        assertThat(byNumber.push().jid()).isEqualTo("42");
        assertThat(new SidekiqMapping(config(Map.of())).map(null).problem()).contains("decodes to null");
    }

    /**
     * A registry that refuses the lookup (401) is not the record's fault: the source throws, the job restarts and asks
     * again, and no good push becomes a dead letter that the next checkpoint would commit past.
     */
    @Test
    void aRegistryThatRefusesFailsTheSourceInsteadOfDeadLetteringTheRecord() throws Exception {
        com.sun.net.httpserver.HttpServer refusing = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        refusing.createContext("/", exchange -> {
            byte[] body = "{\"error_code\":401,\"message\":\"Unauthorized\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(401, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        refusing.start();
        try {
            SidekiqRecords records = new SidekiqRecords("http://127.0.0.1:" + refusing.getAddress().getPort(), new SidekiqMapping(config(Map.of())));
            byte[] value = new io.sluice.core.avro.ConfluentWire(7, SluiceAvro.PUSH_JOB.schema())
                    .encode(SluiceAvro.PUSH_JOB.toAvro(new PushJob("j1", "app-1", "u", "c", "m", 1L)));
            java.util.List<io.sluice.jobs.common.Decoded<SidekiqPush>> out = new java.util.ArrayList<>();
            assertThatThrownBy(() -> records.deserialize(new org.apache.kafka.clients.consumer.ConsumerRecord<>("push-queue", 0, 5L, null, value),
                    new org.apache.flink.util.Collector<>() {
                        @Override
                        public void collect(io.sluice.jobs.common.Decoded<SidekiqPush> d) {
                            out.add(d);
                        }

                        @Override
                        public void close() {
                        }
                    })).isInstanceOf(java.io.UncheckedIOException.class).hasMessageContaining("did not answer for schema id 7");
            assertThat(out).as("nothing emitted, no dead letter").isEmpty();
        } finally {
            refusing.stop(0);
        }
    }
}
