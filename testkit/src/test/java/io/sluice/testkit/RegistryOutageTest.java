package io.sluice.testkit;

import io.sluice.core.avro.RegistryDecoder;
import io.sluice.core.avro.SluiceAvro;
import io.sluice.core.model.SubscriptionUpdate;
import org.apache.flink.formats.avro.registry.confluent.ConfluentRegistryAvroSerializationSchema;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A registry that is down for a moment while a decoder needs it (a schema id it has not seen yet): the lookup waits it
 * out and answers, as the chaos run's registry fault showed it must; before, the task failed and both jobs restarted.
 */
class RegistryOutageTest {
    @Test
    void aLookupDuringAShortOutageWaitsForTheRegistryInsteadOfFailingTheTask() throws Exception {
        try (SchemaRegistryStandIn registry = SchemaRegistryStandIn.start(0)) {
            var serializer = ConfluentRegistryAvroSerializationSchema.forGeneric("outage-value", SluiceAvro.SUBSCRIPTION_UPDATE.schema(), registry.url());
            serializer.open(null);
            var update = new SubscriptionUpdate("app-1", "sub-1", Map.of("plan", "pro"), List.of(), 1_700_000_000_000L);
            byte[] good = serializer.serialize(SluiceAvro.SUBSCRIPTION_UPDATE.toAvro(update));
            byte[] unknownId = Arrays.copyOf(good, good.length);
            unknownId[1] = 0x0f; // schema id 0x0f000000+: not in the registry
            URI url = URI.create(registry.url());

            CompletableFuture<Void> outage = CompletableFuture.runAsync(() -> {
                try {
                    registry.unreachableFor(Duration.ofMillis(1_500));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            Await.until("the registry to refuse connections", Duration.ofSeconds(10), () -> !accepts(url));
            RegistryDecoder<SubscriptionUpdate> decoder = new RegistryDecoder<>(SluiceAvro.SUBSCRIPTION_UPDATE, registry.url());
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> decoder.decode(unknownId)).isInstanceOf(RegistryDecoder.Failure.class)
                    .satisfies(f -> assertThat(((RegistryDecoder.Failure) f).kind()).isEqualTo("unknown-schema-id"));
            long waitedMs = (System.nanoTime() - t0) / 1_000_000;
            outage.join();
            assertThat(waitedMs).as("the lookup waited for the registry to come back").isBetween(500L, RegistryDecoder.REGISTRY_PATIENCE_MS);
            assertThat(decoder.decode(good)).isEqualTo(update);
        }
    }

    private static boolean accepts(URI url) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(url.getHost(), url.getPort()), 200);
            return true;
        } catch (java.io.IOException refused) {
            return false;
        }
    }
}
