-- What is one app sending right now? Its user events and subscription updates as they arrive (the
-- stream-inspection tool): what each record says, where it sits in Kafka, and how far its event time
-- is behind the wall clock. Runs until cancelled (Ctrl-C / Q in the SQL client).
-- Parameter: app_id (./sluice sql -f sql/queries/app-live-stream.sql --set app_id=app-3; default app-0).
-- Only new records: add /*+ OPTIONS('scan.startup.mode' = 'latest-offset') */ after each table name.
SELECT 'event'                                AS kind,
       occurred_at                            AS event_time,
       TIME_LAG_MS(occurred_at)               AS lag_ms,
       user_id                                AS id,
       name                                   AS what,
       JSON_OBJECT('value' VALUE `value`, 'properties' VALUE JSON_STRING(properties)) AS detail,
       kafka_partition,
       kafka_offset
FROM user_events
WHERE app_id = '${app_id:-app-0}'
UNION ALL
SELECT 'update',
       sent_at,
       TIME_LAG_MS(sent_at),
       subscription_id,
       'set ' || CAST(CARDINALITY(`set`) AS STRING) || ', unset ' || CAST(CARDINALITY(`unset`) AS STRING),
       JSON_OBJECT('set' VALUE JSON_STRING(`set`), 'unset' VALUE JSON_STRING(`unset`)),
       kafka_partition,
       kafka_offset
FROM subscription_updates
WHERE app_id = '${app_id:-app-0}';
