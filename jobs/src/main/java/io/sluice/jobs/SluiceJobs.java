package io.sluice.jobs;

import java.util.List;

/** Every job Sluice ships, in the order the local command starts them. */
public final class SluiceJobs {
    private SluiceJobs() {
    }

    public static List<SluiceJob> all() {
        return List.of(new io.sluice.jobs.subscriptions.SubscriptionJob(), new io.sluice.jobs.aggregation.AggregationJob());
    }

    /** The jobs a deployment runs only if it wants them (not in {@link #all}): the Sidekiq bridge. */
    public static List<SluiceJob> optional() {
        return List.of(new io.sluice.jobs.sidekiq.SidekiqBridgeJob());
    }
}
