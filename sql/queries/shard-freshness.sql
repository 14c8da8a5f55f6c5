-- Which shard is behind? Per shard and table: rows, the newest time written (update time, or the start
-- of the newest counted window) and how far that is behind the wall clock; per shard and job: records
-- committed (per partition the highest offset committed there + 1, summed) and the newest event time committed (the time lag the local command and the metrics report). Reads the shards through JDBC once,
-- as a batch query: one final row per shard and table.
SET 'execution.runtime-mode' = 'batch';
SELECT shard, 'subscriptions' AS what, COUNT(*) AS row_count,
       MAX(updated_at) AS newest, TIME_LAG_MS(MAX(updated_at)) AS lag_ms
FROM subscriptions GROUP BY shard
UNION ALL
SELECT shard, 'user_event_counts', COUNT(*), MAX(window_start), TIME_LAG_MS(MAX(window_start))
FROM user_event_counts GROUP BY shard
UNION ALL
SELECT shard, 'committed by ' || job, SUM(records), MAX(newest_event_at), TIME_LAG_MS(MAX(newest_event_at))
FROM sluice_progress GROUP BY shard, job;
