-- Sluice shard schema, version 1. Applied idempotently at start by ShardMigrations.
CREATE TABLE IF NOT EXISTS subscriptions (
    app_id          text        NOT NULL,
    subscription_id text        NOT NULL,
    properties      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at      timestamptz NOT NULL,
    -- Kafka offset of the newest update applied; writes with an older version are ignored,
    -- which makes replays after a restore idempotent and keeps rows from moving backwards.
    version         bigint      NOT NULL,
    PRIMARY KEY (app_id, subscription_id)
);

CREATE TABLE IF NOT EXISTS user_event_counts (
    app_id       text             NOT NULL,
    user_id      text             NOT NULL,
    event_name   text             NOT NULL,
    window_start timestamptz      NOT NULL,
    window_end   timestamptz      NOT NULL,
    count        bigint           NOT NULL,
    sum          double precision NOT NULL,
    PRIMARY KEY (app_id, user_id, event_name, window_start)
);

-- Per job and source partition: how far the job has committed into this shard, and the event
-- time of the newest record committed. The local command and the lag metrics read it.
CREATE TABLE IF NOT EXISTS sluice_progress (
    job             text        NOT NULL,
    source_partition int        NOT NULL,
    records         bigint      NOT NULL DEFAULT 0,
    newest_event_at timestamptz,
    committed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, source_partition)
);
