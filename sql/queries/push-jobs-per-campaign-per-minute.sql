-- How many pushes does each campaign send? Push jobs committed to push-queue (read_committed, so each
-- exactly once) per campaign (of its app: a campaign id is unique within its app only) per minute of created_at (the event time that put the user in the
-- segment), with distinct users. An updating result: a paced campaign's minute keeps growing while its
-- queue drains, so no window closes on it early.
SELECT app_id,
       campaign_id,
       FLOOR(created_at TO MINUTE)  AS minute_start,
       COUNT(*)                     AS push_jobs,
       COUNT(DISTINCT user_id)      AS users
FROM push_queue
GROUP BY app_id, campaign_id, FLOOR(created_at TO MINUTE);
