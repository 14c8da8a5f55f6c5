-- Why are records rejected? Dead letters by source topic, stage (validate, late, shard-write) and kind
-- of reason (the reason text before its first ':', digits replaced by N so "late by 61234 ms" and
-- "late by 70000 ms" count together), with one full example reason and when they were seen.
SELECT source_topic,
       stage,
       REGEXP_REPLACE(SPLIT_INDEX(reason, ':', 0), '[0-9]+', 'N') AS reason_kind,
       COUNT(*)          AS dead_letters,
       MAX(reason)       AS example_reason,
       MIN(kafka_time)   AS first_seen,
       MAX(kafka_time)   AS last_seen
FROM dead_letters
GROUP BY source_topic, stage, REGEXP_REPLACE(SPLIT_INDEX(reason, ':', 0), '[0-9]+', 'N');
