package io.sluice.jobs.shards;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.jobs.common.DeadLetter;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.streaming.runtime.tasks.TestProcessingTimeService;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The order in which a shard sink writer carries the rows a shard has not committed through a checkpoint: the batch in
 * flight first, then the buffer's rounds in order, merges kept; restored rows go back in that order, before any newer row,
 * and newer rows of the same key merge behind them. The one shard refuses connections, so a batch that went out stays in
 * flight (retrying) for the whole test.
 * Restored rows are buffered again as if they had just arrived, so rows the shard may merge are merged (the guarded
 * statements make a replay of what was committed a no-op).
 */
class PendingRowsOrderTest {
    /** Port 9 (discard) on this host: nothing listens, so every connection attempt is refused at once. */
    private static final SluiceConfig CONFIG = SluiceConfig.from(RawConfig.empty().put("kafka.bootstrap", "x:1", "t")
            .put("registry.url", "http://x", "t").put("shards.urls", "jdbc:postgresql://127.0.0.1:9/a", "t").put("deployment.id", "t", "t"));

    @Test
    void aKeysInFlightBatchThenItsBufferRoundsAreCarriedAndRestoredInOrder() throws Exception {
        ShardedSink<Row> sink = new ShardedSink<>(CONFIG, "order-test", new Rows(), 3_600_000, 2);
        List<Row> held;
        try (ShardedSink.Writer<Row> writer = writer(sink, List.of())) {
            writer.write(new Row("k", "1"), null);
            writer.write(new Row("other", "1"), null); // 2 rows buffered: the batch goes out and stays in flight
            writer.write(new Row("k", "2"), null); // buffered behind the batch in flight
            writer.write(new Row("k", "3"), null); // merged into 2
            writer.write(new Row("k", "!4"), null); // may not be merged: a second round
            writer.write(new Row("k", "5"), null); // merged into !4, not into 2+3 (that would jump it)
            writer.write(new Row("other", "2"), null);
            held = single(writer.snapshotState(1));
        }
        assertThat(held).extracting(Row::toString).containsExactly(
                "k=1", "other=1", // the batch in flight
                "k=2+3", "other=2", // round 0 of the buffer
                "k=!4+5"); // round 1

        ShardedSink<Row> restoredSink = new ShardedSink<>(CONFIG, "order-test", new Rows(), 3_600_000, 1_000);
        try (ShardedSink.Writer<Row> writer = writer(restoredSink, List.of(new ShardedSink.Pending<>(1, held)))) {
            writer.write(new Row("k", "6"), null); // newer than every restored row of k
            writer.write(new Row("new", "1"), null);
            assertThat(single(writer.snapshotState(2))).extracting(Row::toString).containsExactly(
                    "k=1+2+3", "other=1+2", "new=1", // round 0: restored rows merge as buffered ones do, in their order
                    "k=!4+5+6"); // round 1: the newest row merges behind k's last restored one, never before it
        }
    }

    private static ShardedSink.Writer<Row> writer(ShardedSink<Row> sink, Collection<ShardedSink.Pending<Row>> recovered) {
        return new ShardedSink.Writer<>(sink, new TestProcessingTimeService(), new DirectMailbox(), new UnregisteredMetricsGroup(), 0, 1, recovered);
    }

    private static List<Row> single(List<ShardedSink.Pending<Row>> state) {
        assertThat(state).as("one pending entry per subtask").hasSize(1);
        assertThat(state.get(0).parallelism()).isEqualTo(1);
        return state.get(0).rows();
    }

    /** A key and its value history; values starting with '!' may not be merged into an earlier row. */
    record Row(String key, String value) {
        @Override
        public String toString() {
            return key + "=" + value;
        }
    }

    /** Rows of one app; merging concatenates values. Nothing is ever written: the shard refuses connections. */
    static final class Rows implements ShardTable<Row> {
        @Override
        public String appId(Row row) {
            return "app";
        }

        @Override
        public Object key(Row row) {
            return row.key();
        }

        @Override
        public boolean mergeable(Row older, Row newer) {
            return !newer.value().startsWith("!");
        }

        @Override
        public Row merge(Row older, Row newer) {
            return new Row(older.key(), older.value() + "+" + newer.value());
        }

        @Override
        public Written<Row> write(Connection c, List<Row> rows) {
            throw new AssertionError("no shard answers in this test");
        }

        @Override
        public String sourceTopic() {
            return "rows";
        }

        @Override
        public int sourcePartition(Row row) {
            return 0;
        }

        @Override
        public long sourceOffset(Row row) {
            return -1;
        }

        @Override
        public long newestEventAt(Row row) {
            return 0;
        }

        @Override
        public DeadLetter rejected(Row row, String reason) {
            throw new AssertionError("no shard answers in this test");
        }

        @Override
        public void writeRow(DataOutputView out, Row row) throws IOException {
            out.writeUTF(row.key());
            out.writeUTF(row.value());
        }

        @Override
        public Row readRow(DataInputView in) throws IOException {
            return new Row(in.readUTF(), in.readUTF());
        }
    }
}
