package io.sluice.chaos;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/** The kinds of fault a chaos run injects, and the seeded order it injects them in. */
enum Fault {
    /** SIGKILL of one TaskManager process; a new one is started. */
    TASKMANAGER_SIGKILL("taskmanager-sigkill", true),
    /** SIGKILL of the JobManager; a new one is started, and each job resumes from its newest retained checkpoint once the TaskManagers released the old tasks. */
    JOBMANAGER_SIGKILL("jobmanager-sigkill", true),
    /** SIGKILL of a Postgres shard's postmaster and all its children, then a restart on the same data directory. */
    SHARD_SIGKILL("shard-sigkill", false),
    /** Every Sluice connection to both shards terminated ({@code pg_terminate_backend}) while batches flow. */
    CONNECTIONS_KILLED("connections-killed", false),
    /** A shard's two tables locked (ACCESS EXCLUSIVE) for longer than the checkpoint timeout. */
    SHARD_LOCKED("shard-locked", false),
    /** One job stopped with a savepoint and resumed from it at the other parallelism (2 → 3, 3 → 2). */
    RESCALE("rescale", true),
    /** The schema registry refuses connections for a few seconds. */
    REGISTRY_DOWN("registry-down", false),
    /** The Kafka broker shut down for a few seconds and started again on the same port and log directories, with the push queue's transactions open. */
    BROKER_RESTART("broker-restart", false);

    final String label;
    /**
     * Takes tens of seconds to inject or recover from (in CI runs: a TaskManager kill 26–46 s, a JobManager kill 46–81 s,
     * a rescale through two savepoints about 50 s), so it comes first, and a repeat of it only early enough in the run.
     */
    final boolean slow;

    Fault(String label, boolean slow) {
        this.label = label;
        this.slow = slow;
    }

    static Fault parse(String label) {
        for (Fault f : values()) {
            if (f.label.equals(label)) {
                return f;
            }
        }
        throw new IllegalArgumentException("no fault kind '" + label + "'; the kinds are " + labels(List.of(values())));
    }

    static String labels(List<Fault> kinds) {
        return String.join(",", kinds.stream().map(f -> f.label).toList());
    }

    /**
     * {@code count} faults in a seeded order: every one of {@code kinds} {@code perKind} times first (shuffled, then the
     * {@link #slow} ones moved before the others, each group in its shuffled order), then kinds drawn at random up to
     * {@code count}. So the slow ones start while the run's time is young, and what is left of it is spent on quick ones.
     */
    static List<Fault> schedule(List<Fault> kinds, int perKind, int count, Random random) {
        List<Fault> out = new ArrayList<>();
        for (int i = 0; i < perKind; i++) {
            out.addAll(kinds);
        }
        Collections.shuffle(out, random);
        out.sort(Comparator.comparing(f -> !f.slow)); // stable: each group keeps the seed's order
        while (out.size() < count) {
            out.add(kinds.get(random.nextInt(kinds.size())));
        }
        return out;
    }
}
