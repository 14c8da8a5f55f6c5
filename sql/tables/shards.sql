-- Every Postgres shard's tables, one Flink table per shard and table (JDBC connector, read as a
-- bounded scan when queried), and a view across all shards with a `shard` column. Shard URLs and
-- credentials come from Sluice's configuration (shards.urls, shards.user, shards.password or
-- SLUICE_SHARDS_PASSWORD). Which shard holds an app: SHARD_OF(app_id, '${routing.bucket-map}') (hash@ranges).
-- The views across shards keep each app's rows from its own shard only, so a row left on another shard
-- (a re-shard in progress, docs/operations.md#re-sharding) never shows twice.

-- for each shard
CREATE TABLE subscriptions_${shard} (
  app_id          STRING NOT NULL,
  subscription_id STRING NOT NULL,
  properties      STRING NOT NULL,   -- jsonb as JSON text: PROP(properties, 'key') reads one key
  updated_at      TIMESTAMP(3) NOT NULL,
  version         BIGINT NOT NULL,   -- Kafka offset of the newest update applied (in its source epoch and partition)
  PRIMARY KEY (app_id, subscription_id) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${shard.url}',
  'table-name' = 'subscriptions_text'${shard.credentials-options}   -- a view: properties as text (read only)
);

CREATE TABLE user_event_counts_${shard} (
  app_id       STRING NOT NULL,
  user_id      STRING NOT NULL,
  event_name   STRING NOT NULL,
  window_start TIMESTAMP(3) NOT NULL,
  window_end   TIMESTAMP(3) NOT NULL,
  `count`      BIGINT NOT NULL,
  `sum`        DOUBLE NOT NULL,
  PRIMARY KEY (app_id, user_id, event_name, window_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${shard.url}',
  'table-name' = 'user_event_counts'${shard.credentials-options}
);

-- How far each job has committed into this shard, per source partition of its newest source epoch: the
-- highest offset committed, and records = that offset + 1 (the position: it includes dead-lettered records).
CREATE TABLE sluice_progress_${shard} (
  job              STRING NOT NULL,
  topic            STRING NOT NULL,
  source_partition INT NOT NULL,
  committed_offset BIGINT NOT NULL,
  records          BIGINT NOT NULL,
  newest_event_at  TIMESTAMP(3),
  committed_at     TIMESTAMP(3) NOT NULL,
  PRIMARY KEY (job, topic, source_partition) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${shard.url}',
  'table-name' = 'sluice_partition_progress'${shard.credentials-options}
);

-- Written by continuous/hourly-app-summary.sql.
CREATE TABLE app_hourly_summary_${shard} (
  app_id     STRING NOT NULL,
  hour_start TIMESTAMP(3) NOT NULL,
  events     BIGINT NOT NULL,
  users      BIGINT NOT NULL,
  value_sum  DOUBLE NOT NULL,
  PRIMARY KEY (app_id, hour_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${shard.url}',
  'table-name' = 'app_hourly_summary',
  'sink.buffer-flush.interval' = '1s'${shard.credentials-options}
);
-- end for each shard

CREATE VIEW subscriptions AS
-- for each shard, joined by UNION ALL
SELECT ${shard} AS shard, app_id, subscription_id, properties, updated_at, version FROM subscriptions_${shard} WHERE SHARD_OF(app_id, '${routing.bucket-map}') = ${shard}
-- end for each shard
;

CREATE VIEW user_event_counts AS
-- for each shard, joined by UNION ALL
SELECT ${shard} AS shard, app_id, user_id, event_name, window_start, window_end, `count`, `sum` FROM user_event_counts_${shard} WHERE SHARD_OF(app_id, '${routing.bucket-map}') = ${shard}
-- end for each shard
;

CREATE VIEW sluice_progress AS
-- for each shard, joined by UNION ALL
SELECT ${shard} AS shard, job, topic, source_partition, committed_offset, records, newest_event_at, committed_at FROM sluice_progress_${shard}
-- end for each shard
;

CREATE VIEW app_hourly_summary AS
-- for each shard, joined by UNION ALL
SELECT ${shard} AS shard, app_id, hour_start, events, users, value_sum FROM app_hourly_summary_${shard} WHERE SHARD_OF(app_id, '${routing.bucket-map}') = ${shard}
-- end for each shard
;
