-- Who is sending the most? Subscription updates per app per minute (event time sent_at), the top
-- apps of each minute ranked by updates, with how many distinct subscriptions they touched.
-- A minute's ranking appears when the watermark passes its end (sent_at of newer updates - 5 s).
-- Parameter: top (default 10).
SELECT window_start, window_end, rank_in_minute, app_id, updates, subscriptions
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY updates DESC) AS rank_in_minute
  FROM (
    SELECT window_start, window_end, app_id, COUNT(*) AS updates, COUNT(DISTINCT subscription_id) AS subscriptions
    FROM TABLE(TUMBLE(TABLE subscription_updates, DESCRIPTOR(sent_at), INTERVAL '1' MINUTE))
    GROUP BY window_start, window_end, app_id
  )
)
WHERE rank_in_minute <= ${top:-10};
