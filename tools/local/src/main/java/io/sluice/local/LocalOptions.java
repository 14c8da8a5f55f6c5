package io.sluice.local;

import io.sluice.core.config.RawConfig;

import java.nio.file.Path;

/**
 * The local command's own keys ({@code local.*}), read in one place so {@code docs/configuration.md}
 * can be checked against them.
 */
public record LocalOptions(long durationS, int shards, int webPort, int registryPort, long progressMs, Path workDir, boolean runFlink, boolean sidekiq) {
    public static LocalOptions from(RawConfig raw) {
        long durationS = raw.longValue("local.duration", 0, 0, 365L * 86400);
        int shards = raw.integer("local.shards", 2, 1, 64);
        int webPort = raw.integer("local.web-port", 8081, 0, 65535);
        int registryPort = raw.integer("local.registry-port", 0, 0, 65535);
        long progressMs = raw.durationMs("local.progress-interval", 5000, 500, 3_600_000);
        Path workDir = Path.of(raw.string("local.work-dir", "target/sluice-local")).toAbsolutePath();
        String jobsMode = raw.string("local.jobs", "all");
        if (!jobsMode.equals("all") && !jobsMode.equals("none")) {
            throw raw.invalid("local.jobs", jobsMode, "all (run every job in a local Flink) or none (no Flink; submit to a cluster)");
        }
        return new LocalOptions(durationS, shards, webPort, registryPort, progressMs, workDir, jobsMode.equals("all"), raw.bool("local.sidekiq", false));
    }
}
