package io.sluice.testkit;

import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;

/**
 * A real single-node Kafka (KRaft, combined broker + controller) inside this JVM, with
 * transactions usable on one node (docs/stack.md). Listens on an ephemeral port: read
 * {@link #bootstrap()}. Its log directories are deleted on {@link #close()}.
 */
public final class EmbeddedKafka implements AutoCloseable {
    private final KafkaClusterTestKit cluster;

    private EmbeddedKafka(KafkaClusterTestKit cluster) {
        this.cluster = cluster;
    }

    public static EmbeddedKafka start() throws Exception {
        KafkaClusterTestKit cluster = new KafkaClusterTestKit.Builder(
                new TestKitNodes.Builder().setCombined(true).setNumBrokerNodes(1).setNumControllerNodes(1).build())
                .setConfigProp("transaction.state.log.replication.factor", "1")
                .setConfigProp("transaction.state.log.min.isr", "1")
                .setConfigProp("offsets.topic.replication.factor", "1")
                .setConfigProp("offsets.topic.num.partitions", "4")
                .setConfigProp("transaction.state.log.num.partitions", "4")
                .setConfigProp("group.initial.rebalance.delay.ms", "0")
                .setConfigProp("transaction.max.timeout.ms", "900000")
                .setConfigProp("auto.create.topics.enable", "false")
                .setConfigProp("log.flush.interval.messages", String.valueOf(Long.MAX_VALUE))
                .setDeleteOnClose(true)
                .build();
        java.io.PrintStream stdout = System.out;
        try {
            // the KRaft formatter prints its bootstrap metadata straight to stdout
            System.setOut(new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
            cluster.format();
            System.setOut(stdout);
            cluster.startup();
            cluster.waitForReadyBrokers();
        } catch (Exception e) {
            cluster.close();
            throw e;
        } finally {
            System.setOut(stdout);
        }
        return new EmbeddedKafka(cluster);
    }

    public String bootstrap() {
        return cluster.bootstrapServers();
    }

    /**
     * Restarts the broker: shuts it down (open transactions stay open in its transaction log, clients lose their
     * connections), waits {@code down}, and starts it again on the same port and log directories, returning once it
     * serves again. The node's KRaft controller keeps running, as a separate controller would.
     */
    public void restartBroker(java.time.Duration down) throws Exception {
        var broker = cluster.brokers().values().iterator().next();
        String before = bootstrap();
        broker.shutdown();
        broker.awaitShutdown();
        Thread.sleep(down.toMillis());
        broker.startup();
        cluster.waitForReadyBrokers();
        if (!bootstrap().equals(before)) {
            throw new IllegalStateException("the broker came back on " + bootstrap() + ", not " + before);
        }
    }

    @Override
    public void close() throws Exception {
        cluster.close();
    }
}
