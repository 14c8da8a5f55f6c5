-- Sluice's Kafka topics as Flink SQL tables. Values are Avro in the Confluent wire format, decoded
-- with the writer schema from the schema registry. Format 'sluice-avro-confluent' (in Sluice's UDF jar)
-- is Flink's 'avro-confluent' except that a record it cannot decode is skipped and counted instead of
-- failing the query; the jobs dead-letter those records (see dead_letters). The columns follow the
-- .avsc files in core/src/main/resources/avro. Every placeholder is filled from Sluice's configuration
-- (the same keys and file the jobs read): broker, registry, topic names, Kafka client properties.
-- Reads see committed records only and start at sql.scan-startup-mode (default earliest-offset);
-- for a live tail of a big topic add /*+ OPTIONS('scan.startup.mode' = 'latest-offset') */ to a query.
-- Each table also exposes where a record sits in Kafka: kafka_partition, kafka_offset, kafka_time.

-- One thing a user did; key app_id:user_id. Event time occurred_at, 5 s out of order allowed.
CREATE TABLE user_events (
  app_id          STRING NOT NULL,
  user_id         STRING NOT NULL,
  name            STRING NOT NULL,
  occurred_at     TIMESTAMP(3) NOT NULL,
  `value`         DOUBLE,
  properties      MAP<STRING, STRING>,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset    BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time      TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  WATERMARK FOR occurred_at AS occurred_at - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${kafka.topics.user-events}',
  'properties.bootstrap.servers' = '${kafka.bootstrap}',
  'properties.isolation.level' = 'read_committed'${kafka.properties-options},
  'scan.startup.mode' = '${sql.scan-startup-mode}',
  'scan.bounded.mode' = '${sql.scan-bounded-mode}',
  'format' = 'sluice-avro-confluent',
  'sluice-avro-confluent.url' = '${registry.url}'
);

-- Property changes for one subscription; key app_id; applied in offset order per partition.
CREATE TABLE subscription_updates (
  app_id          STRING NOT NULL,
  subscription_id STRING NOT NULL,
  `set`           MAP<STRING, STRING> NOT NULL,
  `unset`         ARRAY<STRING> NOT NULL,
  sent_at         TIMESTAMP(3) NOT NULL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset    BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time      TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  WATERMARK FOR sent_at AS sent_at - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${kafka.topics.subscription-updates}',
  'properties.bootstrap.servers' = '${kafka.bootstrap}',
  'properties.isolation.level' = 'read_committed'${kafka.properties-options},
  'scan.startup.mode' = '${sql.scan-startup-mode}',
  'scan.bounded.mode' = '${sql.scan-bounded-mode}',
  'format' = 'sluice-avro-confluent',
  'sluice-avro-confluent.url' = '${registry.url}'
);

-- Campaign definitions (compacted topic, key app_id:campaign_id; a campaign id is unique within its app):
-- every version written, newest last.
-- A deleted campaign's tombstone has no value and is not a row here.
CREATE TABLE campaigns (
  campaign_id     STRING NOT NULL,
  app_id          STRING NOT NULL,
  event_name      STRING NOT NULL,
  min_count       INT NOT NULL,
  `window`        BIGINT NOT NULL,
  message         STRING NOT NULL,
  max_per_second  INT NOT NULL,
  active          BOOLEAN NOT NULL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset    BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time      TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${kafka.topics.campaigns}',
  'properties.bootstrap.servers' = '${kafka.bootstrap}',
  'properties.isolation.level' = 'read_committed'${kafka.properties-options},
  'scan.startup.mode' = '${sql.scan-startup-mode}',
  'scan.bounded.mode' = '${sql.scan-bounded-mode}',
  'format' = 'sluice-avro-confluent',
  'sluice-avro-confluent.url' = '${registry.url}'
);

-- Push jobs the aggregation job committed (read_committed: exactly once each), with the
-- CloudEvents headers (ce_id, ce_type, ce_source, ce_time, ...) senders can trigger on.
CREATE TABLE push_queue (
  job_id          STRING NOT NULL,
  app_id          STRING NOT NULL,
  user_id         STRING NOT NULL,
  campaign_id     STRING NOT NULL,
  message         STRING NOT NULL,
  created_at      TIMESTAMP(3) NOT NULL,
  headers         MAP<STRING, BYTES> METADATA VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset    BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time      TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  WATERMARK FOR created_at AS created_at - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${kafka.topics.push-queue}',
  'properties.bootstrap.servers' = '${kafka.bootstrap}',
  'properties.isolation.level' = 'read_committed'${kafka.properties-options},
  'scan.startup.mode' = '${sql.scan-startup-mode}',
  'scan.bounded.mode' = '${sql.scan-bounded-mode}',
  'format' = 'sluice-avro-confluent',
  'sluice-avro-confluent.url' = '${registry.url}'
);

-- Records a job rejected: the original value bytes untouched, and headers naming the source
-- topic/partition/offset, the stage that rejected it and why (see the dead_letters view).
CREATE TABLE dead_letters_raw (
  original_value  BYTES,
  headers         MAP<STRING, BYTES> METADATA VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset    BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time      TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${kafka.topics.dead-letters}',
  'properties.bootstrap.servers' = '${kafka.bootstrap}',
  'properties.isolation.level' = 'read_committed'${kafka.properties-options},
  'scan.startup.mode' = '${sql.scan-startup-mode}',
  'scan.bounded.mode' = '${sql.scan-bounded-mode}',
  'format' = 'raw'
);

CREATE VIEW dead_letters AS
SELECT
  CAST(headers['sluice.source.topic'] AS STRING)                  AS source_topic,
  CAST(CAST(headers['sluice.source.partition'] AS STRING) AS INT) AS source_partition,
  CAST(CAST(headers['sluice.source.offset'] AS STRING) AS BIGINT) AS source_offset,
  CAST(headers['sluice.stage'] AS STRING)                         AS stage,
  CAST(headers['sluice.reason'] AS STRING)                        AS reason,
  original_value,
  kafka_time
FROM dead_letters_raw;
