-- Session settings for Sluice's SQL scripts and the SQL client (./sluice sql runs this first).
-- Event times in Sluice's topics and tables are UTC; the session shows and compares them in UTC.
SET 'table.local-time-zone' = 'UTC';
-- The SQL client prints results as a table in the terminal, also for -f scripts.
SET 'sql-client.execution.result-mode' = 'tableau';
SET 'sql-client.display.max-column-width' = '60';
