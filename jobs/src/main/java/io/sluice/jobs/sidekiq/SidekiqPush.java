package io.sluice.jobs.sidekiq;

/**
 * One Sidekiq job to enqueue: its {@code jid} (the once-per-job marker's key), its queue, and its JSON payload without
 * {@code enqueued_at}, which the sink adds when it enqueues ({@code payloadHead} is the object up to its closing brace).
 */
public record SidekiqPush(String jid, String queue, String payloadHead) {
}
