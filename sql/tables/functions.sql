-- Sluice's SQL functions, from its UDF jar (udfs/target/sluice-udfs.jar; ./sluice sql passes it with -j,
-- elsewhere: ADD JAR '/path/to/sluice-udfs.jar';). The routing functions run the jobs' own router.
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS SHARD_OF AS 'io.sluice.udfs.ShardOf' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS BUCKET_OF AS 'io.sluice.udfs.BucketOf' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS PROP AS 'io.sluice.udfs.Prop' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS TIME_LAG_MS AS 'io.sluice.udfs.TimeLagMs' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS PUSH_JOB_ID AS 'io.sluice.udfs.PushJobId' LANGUAGE JAVA;
