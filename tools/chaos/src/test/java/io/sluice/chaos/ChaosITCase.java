package io.sluice.chaos;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The chaos run's short variant, as CI runs it: 5 minutes of load at 1,500 records/s, or longer until the jobs have
 * recovered from the last fault (every kind's fault started within 10 minutes); ten faults, every kind once first, in
 * an order seed 17 decides, the slow kinds before the quick ones, then repeats as the 5 minutes allow. Nothing may be lost or pushed twice,
 * no sampled row may move backwards, and the jobs must recover from every fault.
 */
class ChaosITCase {
    @Test
    @Timeout(value = 25, unit = TimeUnit.MINUTES) // ~6 min when it passes (CI runs were 6-8 min); a very slow one has room to report why
    void everyKindOfFaultOnceAndNothingLostDuplicatedOrMovedBackwards() throws Exception {
        List<Fault> kinds = List.of(Fault.values());
        ChaosRun.Options options = new ChaosRun.Options(Duration.ofSeconds(300), 10, 1, 17, 1_500, kinds, Path.of("../..").toAbsolutePath().normalize(),
                Path.of("target/chaos-it").toAbsolutePath());
        ChaosRun.Outcome outcome = new ChaosRun(options, System.out).run();
        System.out.println(outcome.table());
        outcome.problems().forEach(p -> System.out.println("PROBLEM " + p));
        System.out.println(outcome.resultLine());
        assertThat(outcome.problems()).as("what the checks found\n" + outcome.table()).isEmpty();
        assertThat(outcome.faults().stream().map(ChaosRun.Injected::kind).distinct().toList()).as("kinds injected\n" + outcome.table())
                .containsExactlyInAnyOrderElementsOf(kinds);
        assertThat(outcome.lost()).as("lost rows, pushes and dead letters").isZero();
        assertThat(outcome.duplicatedPushes()).as("push jobs a read_committed consumer saw twice").isZero();
        assertThat(outcome.regressions()).as("rows a reader saw move backwards").isZero();
        assertThat(outcome.faults()).as("faults the jobs never recovered from\n" + outcome.table()).allMatch(f -> !Double.isNaN(f.recoveryS()));
    }
}
