package io.sluice.testkit;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Reads every row of some apps every 20 ms on its own connection (reconnecting when a test kills it)
 * and records each row whose version went down, or whose content changed without a newer version.
 * {@code query} takes the app id as its one parameter and returns (row id, version, content).
 */
public final class ReadSampler implements AutoCloseable {
    private final Thread thread;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Map<String, Long> versions = new HashMap<>();
    private final Map<String, String> contents = new HashMap<>();
    private final List<String> regressions = new ArrayList<>();
    private long reads;

    public ReadSampler(TestStack stack, List<String> apps, String query) {
        thread = new Thread(() -> {
            Connection[] c = new Connection[stack.config().shards().list().size()];
            while (running.get()) {
                for (String app : apps) {
                    int shard = stack.config().router().shardOf(app);
                    try {
                        if (c[shard] == null) {
                            c[shard] = stack.shard(shard);
                        }
                        try (PreparedStatement st = c[shard].prepareStatement(query)) {
                            st.setString(1, app);
                            try (ResultSet rs = st.executeQuery()) {
                                while (rs.next()) {
                                    observe(app + "/" + rs.getString(1), rs.getLong(2), rs.getString(3));
                                }
                            }
                        }
                        synchronized (this) {
                            reads++;
                        }
                    } catch (SQLException e) {
                        c[shard] = null; // killed by the test; read again on a new connection
                    }
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "read-sampler");
        thread.start();
    }

    private synchronized void observe(String row, long version, String content) {
        Long before = versions.put(row, version);
        String contentBefore = contents.put(row, content);
        if (before != null && (version < before || (version == before && !content.equals(contentBefore)))) {
            regressions.add(row + ": version " + before + " " + contentBefore + " then " + version + " " + content);
        }
    }

    public synchronized long reads() {
        return reads;
    }

    public synchronized List<String> regressions() {
        return new ArrayList<>(regressions);
    }

    /** Stops sampling; fails unless there were more than 100 reads and no row ever moved backwards. */
    public void assertNoRowMovedBackwards() throws InterruptedException {
        close();
        org.assertj.core.api.Assertions.assertThat(reads()).as("sampled reads").isGreaterThan(100);
        org.assertj.core.api.Assertions.assertThat(regressions()).as("sampled rows that moved backwards").isEmpty();
    }

    @Override
    public void close() throws InterruptedException {
        running.set(false);
        thread.join();
    }
}
