package io.sluice.sql;

import io.sluice.core.config.SluiceConfig;
import io.sluice.core.model.SubscriptionUpdate;
import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code ./sluice sql -f} as a user runs it: a separate JVM running Flink's own SQL client, the
 * tables defined from Sluice's configuration, the UDF jar shipped, the query run on a cluster over
 * REST (the test's MiniCluster stands in for {@code ./sluice local}'s); its printed table is checked,
 * and a failing script exits non-zero.
 */
@ExtendWith(SluiceStackExtension.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class SqlCommandITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    private static final long MINUTE_START = 1_700_000_040_000L; // 22:14:00 UTC

    @Test
    void runsAQueryFileOnTheClusterAndPrintsItsRows(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        TestStack stack = base.fresh(Map.of());
        stack.send(new SubscriptionUpdate("acme", "s1", Map.of("plan", "pro"), List.of(), MINUTE_START + 1_000),
                new SubscriptionUpdate("acme", "s2", Map.of("plan", "free"), List.of(), MINUTE_START + 2_000),
                new SubscriptionUpdate("acme", "s1", Map.of(), List.of("plan"), MINUTE_START + 3_000),
                new SubscriptionUpdate("zeta", "s9", Map.of("level", "3"), List.of(), MINUTE_START + 4_000));

        String password = "pw-" + UUID.randomUUID(); // the shards' tables carry it in their DDL; no log or output may
        Result r = sluiceSql(stack.config(), cluster, "queries/updates-per-app-per-minute.sql", "--set", "top=5", "--shards.password", password);

        assertThat(r.exit).as("exit code; output:\n" + r.output).isZero();
        assertThat(r.output).as("the client's output").doesNotContain(password);
        assertThat(Files.readString(Path.of("target/sluice-sql/client.log"))).as("the client's log").isNotEmpty().doesNotContain(password);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(Path.of("target/sluice-sql/client.log")))).isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(Path.of("target/sluice-sql"))))
                .as("its directory, which holds the history and init script (with the password)").isEqualTo("rwx------");
        // tableau rows: window_start, window_end, rank_in_minute, app_id, updates, subscriptions
        assertThat(r.output).containsPattern("\\| 2023-11-14 22:14:00\\.000 \\| 2023-11-14 22:15:00\\.000 \\|\\s+1 \\|\\s+acme \\|\\s+3 \\|\\s+2 \\|")
                .containsPattern("\\| 2023-11-14 22:14:00\\.000 \\| 2023-11-14 22:15:00\\.000 \\|\\s+2 \\|\\s+zeta \\|\\s+1 \\|\\s+1 \\|")
                .contains("Successfully initialized from sql script");
    }

    @Test
    void aFailingStatementExitsNonZeroNamingTheProblem(TestStack stack, @InjectMiniCluster MiniCluster cluster, @TempDir Path dir) throws Exception {
        Path bad = Files.writeString(dir.resolve("bad.sql"), "-- a typo in a table name\nSELECT COUNT(*) FROM user_event;\n");
        Result r = sluiceSql(stack.config(), cluster, bad.toString());
        assertThat(r.exit).as("exit code; output:\n" + r.output).isEqualTo(1);
        assertThat(r.output).contains("sluice sql: a statement of " + bad + " failed").contains("Object 'user_event' not found");
    }

    private record Result(int exit, String output) {
    }

    private static Result sluiceSql(SluiceConfig config, MiniCluster cluster, String file, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx512m",
                "@../flink-conf/java17-opens.args", "-Dlog4j2.configurationFile=log4j2-sql-client.properties",
                "-cp", System.getProperty("java.class.path"), SqlCommand.class.getName(),
                "-f", file,
                "--rest", cluster.getRestAddress().get().toString(),
                "--udf-jar", "../udfs/target/sluice-udfs.jar", "--sql-dir", ".",
                "--bootstrap", config.kafka().bootstrap(), "--registry", config.registry().url(),
                "--shard-urls", String.join(",", config.shards().list().stream().map(SluiceConfig.Shard::jdbcUrl).toList()),
                "--shards.user", config.shards().list().get(0).user(),
                "--kafka.topics.subscription-updates", config.kafka().subscriptionUpdatesTopic(),
                "--sql.scan-bounded-mode", "latest-offset"));
        cmd.addAll(List.of(extra));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("FLINK_CONF_DIR", Path.of("target/sluice-sql/conf").toAbsolutePath().toString());
        Process p = pb.start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String text = new String(out, StandardCharsets.UTF_8);
        System.out.println(text);
        return new Result(p.exitValue(), text);
    }
}
