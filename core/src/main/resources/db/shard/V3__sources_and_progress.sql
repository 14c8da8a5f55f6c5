-- Sluice shard schema, version 3: versions that name their source, and exact progress.
--
-- A subscription row's version is (source_epoch, source_partition, version = offset). A delta applies
-- when the row's epoch is older, or when epoch and partition are the row's and the offset is newer.
-- Rows written before version 3 have no partition (NULL): the first delta of epoch 0 adopts its own.
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS source_epoch int NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS source_partition int;

-- The sources a job has read, one row per source epoch: the topic's identity and partition count when
-- the epoch began. A job refuses to start when the topic no longer matches its epoch (docs/operations.md).
CREATE TABLE IF NOT EXISTS sluice_sources (
    job         text        NOT NULL,
    topic       text        NOT NULL,
    epoch       int         NOT NULL,
    topic_id    text        NOT NULL,
    partitions  int         NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, topic, epoch)
);

-- Progress per (job, topic, source epoch, partition) and writer (sink subtask and connection slot), so
-- concurrent writers never lock the same row: the highest source offset whose rows are committed on this
-- shard (greatest(), so a replay after a restore does not count twice) and the newest event time committed.
-- Version 1's additive counts are dropped: they double-counted replays. Stop the jobs of the previous build
-- before this migration runs (docs/cluster.md#upgrades-with-savepoints).
DROP TABLE IF EXISTS sluice_progress;
CREATE TABLE sluice_progress (
    job              text        NOT NULL,
    topic            text        NOT NULL,
    source_epoch     int         NOT NULL,
    source_partition int         NOT NULL,
    writer           int         NOT NULL,
    committed_offset bigint      NOT NULL,
    newest_event_at  timestamptz,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, topic, source_epoch, source_partition, writer)
);

-- One row per (job, topic, partition) of the newest source epoch on this shard: the high-water mark of
-- committed offsets, and records = that offset + 1, the position in the partition (it includes dead-lettered
-- records, and transaction markers of transactional producers).
CREATE OR REPLACE VIEW sluice_partition_progress AS
SELECT p.job, p.topic, p.source_partition, max(p.committed_offset) AS committed_offset, max(p.committed_offset) + 1 AS records,
       max(p.newest_event_at) AS newest_event_at, max(p.committed_at) AS committed_at
  FROM sluice_progress p
 WHERE p.source_epoch = (SELECT max(e.source_epoch) FROM sluice_progress e WHERE e.job = p.job AND e.topic = p.topic)
 GROUP BY p.job, p.topic, p.source_partition;

CREATE OR REPLACE VIEW subscriptions_text AS
SELECT app_id, subscription_id, properties::text AS properties, updated_at, version FROM subscriptions;

-- The app -> shard rule each generation of this deployment wrote with: the bucket hash, the bucket count
-- and the bucket -> shard map, as one spec ('murmur3-32@0-511:0,512-1023:1'). Every shard holds the same
-- rows; the newest generation is the rule in force. Jobs refuse a configuration that routes otherwise;
-- ./sluice reshard moves rows to a new rule and then records it (docs/operations.md#re-sharding).
CREATE TABLE IF NOT EXISTS sluice_routing (
    generation  int         PRIMARY KEY,
    spec        text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
