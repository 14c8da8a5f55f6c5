-- Which events are users sending most, over the last 10 minutes of event time (occurred_at against
-- the wall clock, UTC)? Top 10 event names with their counts, apps and users; a live, updating ranking.
SELECT name,
       COUNT(*)                 AS events,
       COUNT(DISTINCT app_id)   AS apps,
       COUNT(DISTINCT user_id)  AS users,
       MAX(occurred_at)         AS newest
FROM user_events
WHERE occurred_at > LOCALTIMESTAMP - INTERVAL '10' MINUTE
GROUP BY name
ORDER BY events DESC
LIMIT 10;
