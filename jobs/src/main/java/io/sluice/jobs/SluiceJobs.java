package io.sluice.jobs;

import java.util.List;

/** Every job Sluice ships, in the order the local command starts them. */
public final class SluiceJobs {
    private SluiceJobs() {
    }

    public static List<SluiceJob> all() {
        return List.of(new io.sluice.jobs.subscriptions.SubscriptionJob(), new io.sluice.jobs.aggregation.AggregationJob());
    }
}
