package io.sluice.chaos;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/** The kinds of fault a chaos run injects, and the seeded order it injects them in. */
enum Fault {
    /** SIGKILL of one TaskManager process; a new one is started. */
    TASKMANAGER_SIGKILL("taskmanager-sigkill"),
    /** SIGKILL of the JobManager; a new one is started, and each job resumes from its newest retained checkpoint once the TaskManagers released the old tasks. */
    JOBMANAGER_SIGKILL("jobmanager-sigkill"),
    /** SIGKILL of a Postgres shard's postmaster and all its children, then a restart on the same data directory. */
    SHARD_SIGKILL("shard-sigkill"),
    /** Every Sluice connection to both shards terminated ({@code pg_terminate_backend}) while batches flow. */
    CONNECTIONS_KILLED("connections-killed"),
    /** A shard's two tables locked (ACCESS EXCLUSIVE) for longer than the checkpoint timeout. */
    SHARD_LOCKED("shard-locked"),
    /** One job stopped with a savepoint and resumed from it at the other parallelism (2 → 3, 3 → 2). */
    RESCALE("rescale"),
    /** The schema registry refuses connections for a few seconds. */
    REGISTRY_DOWN("registry-down"),
    /** The Kafka broker shut down for a few seconds and started again on the same port and log directories, with the push queue's transactions open. */
    BROKER_RESTART("broker-restart");

    final String label;

    Fault(String label) {
        this.label = label;
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
     * {@code count} faults in a seeded order: every one of {@code kinds} {@code perKind} times first (shuffled), then
     * kinds drawn at random up to {@code count}.
     */
    static List<Fault> schedule(List<Fault> kinds, int perKind, int count, Random random) {
        List<Fault> out = new ArrayList<>();
        for (int i = 0; i < perKind; i++) {
            out.addAll(kinds);
        }
        Collections.shuffle(out, random);
        while (out.size() < count) {
            out.add(kinds.get(random.nextInt(kinds.size())));
        }
        return out;
    }
}
