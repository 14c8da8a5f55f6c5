package io.sluice.jobs.common;

import io.sluice.testkit.Await;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClient;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.Properties;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Why {@link AdminClosingKafkaSink} exists, and that it still applies: the connector's exactly-once writer keeps an admin
 * client in a field its {@code close()} leaves open. If an upgrade of the connector renames the field, the first test fails:
 * check whether the new writer closes its admin client (then drop the wrapper) or point the wrapper at the new field.
 */
class KafkaSinkLeakTest {
    @Test
    void theConnectorsExactlyOnceWriterStillKeepsItsAdminClientInTheFieldTheWrapperCloses() throws Exception {
        Class<?> writer = Class.forName("org.apache.flink.connector.kafka.sink.ExactlyOnceKafkaWriter");
        Field f = writer.getDeclaredField(AdminClosingKafkaSink.FIELD);
        assertThat(AutoCloseable.class).isAssignableFrom(f.getType());
        assertThat(f.getType()).isAssignableTo(Admin.class);
    }

    @Test
    void closingTheWrappedWriterEndsTheAdminClientsThread() throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", "localhost:1"); // no broker needed: the client's thread starts at creation
        p.put("client.id", "leak-test-" + System.nanoTime());
        Holder holder = new Holder();
        holder.adminClient = AdminClient.create(p);
        String thread = "kafka-admin-client-thread | " + p.get("client.id");
        assertThat(threadAlive(thread)).as("the admin client's thread while it is open").isTrue();

        assertThat(AdminClosingKafkaSink.Writer.closeAdmin(holder)).isTrue();

        assertThat(holder.adminClient).isNull();
        Await.until(thread + " to end after the close", Duration.ofSeconds(10), Duration.ofMillis(50), () -> threadAlive(thread), alive -> !alive);
        assertThat(AdminClosingKafkaSink.Writer.closeAdmin(holder)).as("a second close: nothing left").isFalse();
        assertThat(AdminClosingKafkaSink.Writer.closeAdmin(new Object())).as("a writer without the field").isFalse();
    }

    private static boolean threadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals(name) && t.isAlive());
    }

    /** Stands for the connector's writer: a private-by-convention field of that name. */
    static final class Holder {
        @SuppressWarnings("unused")
        private AdminClient adminClient;
    }
}
