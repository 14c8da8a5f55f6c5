package io.sluice.bench;

import io.sluice.core.config.RawConfig;
import io.sluice.core.config.SluiceConfig;
import io.sluice.local.LocalOptions;
import io.sluice.testkit.generator.GeneratorConfig;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code docs/configuration.md} lists exactly the keys the code reads: the job keys ({@link SluiceConfig}) under
 * "Job keys", and the tools' keys (generator, local command, benchmarks) under "Tool keys". A key added to the code
 * without a line in the docs, or a line left behind for a key the code no longer reads, fails here.
 */
class ConfigurationDocTest {
    private static final Path DOC = Path.of("../../docs/configuration.md");
    private static final Pattern ROW_KEY = Pattern.compile("^\\| `([^`]+)` \\|");

    /** The keys of the first table after {@code ## heading}. */
    static Set<String> documented(String heading) throws Exception {
        Set<String> keys = new TreeSet<>();
        boolean inSection = false;
        boolean inTable = false;
        for (String line : Files.readAllLines(DOC)) {
            if (line.startsWith("## ")) {
                if (inSection) {
                    break;
                }
                inSection = line.equals("## " + heading);
                continue;
            }
            if (!inSection) {
                continue;
            }
            Matcher m = ROW_KEY.matcher(line);
            if (m.find()) {
                keys.add(m.group(1));
                inTable = true;
            } else if (inTable && !line.startsWith("|")) {
                break;
            }
        }
        assertThat(keys).as("keys in the table under '## " + heading + "' of " + DOC).isNotEmpty();
        return keys;
    }

    /** What a reader asked {@code raw} for, with per-shard keys as {@code shards.<i>.*} and pass-through prefixes as {@code prefix*}. */
    static Set<String> asked(RawConfig raw) {
        Set<String> keys = new TreeSet<>();
        for (String k : raw.keysAsked()) {
            keys.add(k.replaceFirst("^shards\\.\\d+\\.", "shards.<i>."));
        }
        for (String prefix : raw.openPrefixes()) {
            keys.add(prefix + "*");
        }
        return keys;
    }

    private static RawConfig minimal() {
        return RawConfig.empty().put("kafka.bootstrap", "k:9092", "test").put("registry.url", "http://r:8081", "test")
                .put("shards.urls", "jdbc:postgresql://a:5432/s,jdbc:postgresql://b:5432/s", "test");
    }

    @Test
    void everyJobKeyIsDocumentedAndEveryDocumentedJobKeyIsRead() throws Exception {
        RawConfig raw = minimal();
        SluiceConfig.from(raw);
        assertThat(documented("Job keys")).isEqualTo(asked(raw));
    }

    @Test
    void everyToolKeyIsDocumentedAndEveryDocumentedToolKeyIsRead() throws Exception {
        RawConfig raw = RawConfig.empty();
        GeneratorConfig.from(raw);
        LocalOptions.from(raw);
        new AggregationBench(raw);
        new SubscriptionBench(raw);
        new SidekiqBench(raw);
        io.sluice.core.setup.Reshard.dryRun(raw);
        assertThat(documented("Tool keys")).isEqualTo(asked(raw));
    }
}
