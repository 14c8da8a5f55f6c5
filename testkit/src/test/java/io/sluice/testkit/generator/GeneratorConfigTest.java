package io.sluice.testkit.generator;

import io.sluice.core.config.ConfigException;
import io.sluice.core.config.RawConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class GeneratorConfigTest {
    private static GeneratorConfig load(Map<String, String> env, String... args) {
        RawConfig raw = RawConfig.fromArgs(args, env, GeneratorConfig.ALIASES);
        GeneratorConfig g = GeneratorConfig.from(raw);
        raw.rejectUnread();
        return g;
    }

    @Test
    void fileThenEnvironmentThenArgumentsWin(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("sluice.yaml");
        Files.writeString(file, """
                generator:
                  rate: 500
                  apps: 7
                """);
        GeneratorConfig fromFile = load(Map.of(), "--config", file.toString());
        assertThat(fromFile.rate()).isEqualTo(500);
        assertThat(fromFile.apps()).isEqualTo(7);
        assertThat(load(Map.of("SLUICE_GENERATOR_RATE", "700"), "--config", file.toString()).rate()).isEqualTo(700);
        assertThat(load(Map.of("SLUICE_GENERATOR_RATE", "700"), "--config", file.toString(), "--rate", "900").rate()).isEqualTo(900);
    }

    @Test
    void aBadValueNamesKeySourceValueAndExpectation() {
        assertThatThrownBy(() -> load(Map.of("SLUICE_GENERATOR_RATE", "-5")))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("'generator.rate' (from environment SLUICE_GENERATOR_RATE) has value '-5'");
        assertThatThrownBy(() -> load(Map.of(), "--generator.hot-key", "maybe"))
                .hasMessageContaining("'generator.hot-key'").hasMessageContaining("true or false");
    }
}
