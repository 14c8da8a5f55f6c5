-- A continuous INSERT INTO: keeps app_hourly_summary on every shard up to date, per app and hour of
-- event time: events, distinct users and the sum of values, as running totals (upserts by
-- (app_id, hour_start) while the hour fills). Each app's rows go to the app's shard by the jobs' own
-- routing (SHARD_OF with the configured bucket map). Submitting returns; the job runs until cancelled
-- (Flink web UI, or: flink cancel). Read it with SELECT * FROM app_hourly_summary.
-- State: one entry per app and hour, dropped 25 h after its last event (an event later than that for
-- the same hour would start the hour's totals again).
SET 'table.exec.state.ttl' = '25 h';
SET 'pipeline.name' = 'sluice-sql-hourly-app-summary';

CREATE TEMPORARY VIEW app_hourly AS
SELECT app_id,
       FLOOR(occurred_at TO HOUR)     AS hour_start,
       COUNT(*)                       AS events,
       COUNT(DISTINCT user_id)        AS users,
       SUM(COALESCE(`value`, 0))      AS value_sum
FROM user_events
GROUP BY app_id, FLOOR(occurred_at TO HOUR);

EXECUTE STATEMENT SET
BEGIN
-- for each shard
INSERT INTO app_hourly_summary_${shard}
SELECT app_id, hour_start, events, users, value_sum FROM app_hourly WHERE SHARD_OF(app_id, '${routing.bucket-map}') = ${shard};
-- end for each shard
END;
