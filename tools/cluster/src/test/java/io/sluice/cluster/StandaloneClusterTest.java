package io.sluice.cluster;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** What the launcher puts into the environment of the processes it starts. */
class StandaloneClusterTest {
    @TempDir
    Path lib;

    @Test
    void rocksDbIsToldTheLibcIsMuslWhereMuslsLibcIs() throws Exception {
        Files.createFile(lib.resolve("ld-musl-x86_64.so.1"));
        Files.createFile(lib.resolve("libc.musl-x86_64.so.1")); // Alpine has both

        assertThat(answer(new HashMap<>(), lib)).containsEntry("ROCKSDB_MUSL_LIBC", "true");
    }

    @Test
    void rocksDbIsToldTheLibcIsNotMuslWhereNoMuslFileIs() throws Exception {
        Files.createFile(lib.resolve("libc.so.6"));

        assertThat(answer(new HashMap<>(), lib)).containsEntry("ROCKSDB_MUSL_LIBC", "false");
    }

    @Test
    void withOnlyMuslsLoaderThereRocksDbIsLeftToAskItself() throws Exception {
        Files.createFile(lib.resolve("libc.so.6"));
        Files.createFile(lib.resolve("ld-musl-x86_64.so.1")); // Debian's musl package beside glibc, or a musl libc named otherwise

        assertThat(answer(new HashMap<>(), lib)).doesNotContainKey("ROCKSDB_MUSL_LIBC");
    }

    @Test
    void anAnswerTheUserGaveIsKeptAndOneRocksDbWouldNotReadIsReplaced() {
        assertThat(answer(new HashMap<>(Map.of("ROCKSDB_MUSL_LIBC", "TRUE")), lib)).containsEntry("ROCKSDB_MUSL_LIBC", "TRUE");
        assertThat(answer(new HashMap<>(Map.of("ROCKSDB_MUSL_LIBC", "1")), lib)).containsEntry("ROCKSDB_MUSL_LIBC", "false");
    }

    @Test
    void withNoLibraryDirectoryToReadRocksDbIsLeftToAskItself() {
        assertThat(answer(new HashMap<>(), lib.resolve("missing"))).doesNotContainKey("ROCKSDB_MUSL_LIBC");
    }

    private static Map<String, String> answer(Map<String, String> env, Path libDir) {
        StandaloneCluster.answerRocksDbMuslQuestion(env, libDir);
        return env;
    }
}
