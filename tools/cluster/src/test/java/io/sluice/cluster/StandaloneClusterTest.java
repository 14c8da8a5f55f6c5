package io.sluice.cluster;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** What the launcher puts into the environment of the processes it starts. */
class StandaloneClusterTest {
    @Test
    void rocksDbIsToldWhetherTheLibcIsMuslAsItsOwnLddCheckWouldAnswerSoNoTaskStartsThatProcess() throws Exception {
        // RocksDB's own check, run here in the test: does ldd name musl?
        Process ldd = new ProcessBuilder(List.of("/usr/bin/env", "sh", "-c", "ldd /usr/bin/env")).redirectErrorStream(true).start();
        String out = new String(ldd.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        ldd.waitFor();
        Map<String, String> env = new HashMap<>();

        StandaloneCluster.answerRocksDbMuslQuestion(env);

        assertThat(env).as("the environment after the launcher's answer; ldd said: %s", out)
                .containsEntry("ROCKSDB_MUSL_LIBC", String.valueOf(out.contains("musl")));
    }

    @Test
    void anAnswerTheUserAlreadyGaveIsKept() {
        Map<String, String> env = new HashMap<>(Map.of("ROCKSDB_MUSL_LIBC", "true"));

        StandaloneCluster.answerRocksDbMuslQuestion(env);

        assertThat(env).containsEntry("ROCKSDB_MUSL_LIBC", "true");
    }
}
