package io.sluice.testkit.generator;

import io.sluice.core.config.RawConfig;

import java.io.Serializable;
import java.util.Map;

/**
 * The load generator (local command, tests and benchmarks): {@code rate} records/s across
 * user-events and subscription-updates ({@code updateFraction} of them updates), Zipf-skewed apps,
 * users and subscriptions; {@code count} > 0 makes a bounded run; {@code epochMs} 0 means "now".
 * {@code idlePartition} (or -1) gets no user event for {@code idleForMs} of event time from {@code idleFromMs} after the
 * epoch, then a late one first.
 * Tool keys ({@code generator.*}), not job keys: the jobs refuse them. Listed in {@code docs/configuration.md}.
 */
public record GeneratorConfig(
        double rate,
        long count,
        int apps,
        int users,
        int subscriptionsPerApp,
        int campaigns,
        int campaignMaxPerSecond,
        double updateFraction,
        long seed,
        long epochMs,
        double zipfExponent,
        double malformedFraction,
        double outOfOrderFraction,
        long outOfOrderMaxMs,
        double lateFraction,
        long lateByMs,
        boolean hotKey,
        double hotKeyFraction,
        int idlePartition,
        long idleFromMs,
        long idleForMs,
        String oracleFile) implements Serializable {

    /** Short command-line names for the most used generator keys. */
    public static final Map<String, String> ALIASES = Map.of(
            "rate", "generator.rate",
            "apps", "generator.apps",
            "users", "generator.users",
            "seed", "generator.seed");

    public static GeneratorConfig from(RawConfig raw) {
        return new GeneratorConfig(
                raw.decimal("generator.rate", 1000, 0.1, 10_000_000),
                raw.longValue("generator.count", 0, 0, Long.MAX_VALUE),
                raw.integer("generator.apps", 50, 1, 10_000_000),
                raw.integer("generator.users", 10_000, 1, 1_000_000_000),
                raw.integer("generator.subscriptions-per-app", 2_000, 1, 100_000_000),
                raw.integer("generator.campaigns", 5, 0, 10_000),
                raw.integer("generator.campaign-max-per-second", 100, 1, 10_000_000),
                raw.decimal("generator.update-fraction", 0.5, 0, 1),
                raw.longValue("generator.seed", 42, Long.MIN_VALUE, Long.MAX_VALUE),
                raw.longValue("generator.epoch-ms", 0, 0, Long.MAX_VALUE),
                raw.decimal("generator.zipf-exponent", 1.1, 0, 5),
                raw.decimal("generator.malformed-fraction", 0, 0, 1),
                raw.decimal("generator.out-of-order-fraction", 0, 0, 1),
                raw.durationMs("generator.out-of-order-max", 5_000, 0, 86_400_000),
                raw.decimal("generator.late-fraction", 0, 0, 1),
                raw.durationMs("generator.late-by", 600_000, 0, 86_400_000),
                raw.bool("generator.hot-key", false),
                raw.decimal("generator.hot-key-fraction", 0.2, 0, 1),
                raw.integer("generator.idle-partition", -1, -1, 100_000),
                raw.durationMs("generator.idle-from", 0, 0, 86_400_000),
                raw.durationMs("generator.idle-for", 0, 0, 86_400_000),
                raw.string("generator.oracle-file", null));
    }
}
