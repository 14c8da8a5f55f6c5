-- Sluice shard schema, version 2: what Flink SQL (sql/) reads and writes on the shards. The per-app hourly
-- summary that sql/continuous/hourly-app-summary.sql maintains with a continuous INSERT INTO:
CREATE TABLE IF NOT EXISTS app_hourly_summary (
    app_id     text             NOT NULL,
    hour_start timestamptz      NOT NULL,
    events     bigint           NOT NULL,
    users      bigint           NOT NULL,
    value_sum  double precision NOT NULL,
    PRIMARY KEY (app_id, hour_start)
);

-- Flink's JDBC connector reads jsonb as an object it cannot turn into STRING; Flink SQL reads the
-- subscriptions through this view, with the properties as JSON text (sql/tables/shards.sql).
CREATE OR REPLACE VIEW subscriptions_text AS
SELECT app_id, subscription_id, properties::text AS properties, updated_at, version FROM subscriptions;
