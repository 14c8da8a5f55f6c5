-- Why did this user get that push? The user's window counts from the shards next to the push jobs
-- they received, each push with the rule of its campaign (newest definition), in one list.
-- Parameters: app_id, user_id (./sluice sql -f ... --set app_id=app-0 --set user_id=user-7).
SELECT 'window count'              AS kind,
       c.window_start              AS happened_at,
       c.event_name                AS what,
       c.`count`                   AS n,
       CAST(NULL AS STRING)        AS campaign_id,
       CAST(NULL AS STRING)        AS job_id,
       'shard ' || CAST(c.shard AS STRING) || ', window until ' || CAST(c.window_end AS STRING) AS detail
FROM user_event_counts AS c
WHERE c.app_id = '${app_id:-app-0}' AND c.user_id = '${user_id:-user-0}'
UNION ALL
SELECT 'push job',
       p.created_at,
       k.event_name,
       k.min_count,
       p.campaign_id,
       p.job_id,
       'rule: ' || k.event_name || ' >= ' || CAST(k.min_count AS STRING) || ' within ' || CAST(k.`window` / 1000 AS STRING) || ' s; message: ' || p.message
FROM push_queue AS p
JOIN (
  SELECT app_id, campaign_id, event_name, min_count, `window`
  FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY app_id, campaign_id ORDER BY kafka_offset DESC) AS newest FROM campaigns)
  WHERE newest = 1
) AS k ON p.app_id = k.app_id AND p.campaign_id = k.campaign_id
WHERE p.app_id = '${app_id:-app-0}' AND p.user_id = '${user_id:-user-0}';
