package io.sluice.sql;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.ResultKind;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs a rendered Sluice SQL script in a fresh streaming SQL session on the test's MiniCluster, after
 * the init scripts, as the SQL client would; returns the final rows of its last query (the changelog
 * applied: updated and retracted rows are gone), or waits for its INSERT jobs to finish.
 */
final class SqlRun {
    private static final Pattern SET = Pattern.compile("(?is)SET\\s+'([^']+)'\\s*=\\s*'([^']*)'");

    private SqlRun() {
    }

    static StreamTableEnvironment session(SqlScripts scripts) {
        return session(scripts, new Configuration());
    }

    /** {@code settings}: what the script SETs, applied when the session starts (the runtime mode cannot change later). */
    private static StreamTableEnvironment session(SqlScripts scripts, Configuration settings) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(settings);
        env.setParallelism(2);
        StreamTableEnvironment sql = StreamTableEnvironment.create(env);
        sql.getConfig().getConfiguration().setString("restart-strategy.type", "none"); // a failing query fails the test at once
        for (String statement : SqlScripts.statements(scripts.init())) {
            execute(sql, statement);
        }
        return sql;
    }

    /** A statement as the SQL client runs it: {@code SET 'key' = 'value'} is the client's own, the rest goes to Flink. */
    private static TableResult execute(StreamTableEnvironment sql, String statement) {
        Matcher set = SET.matcher(statement);
        if (set.matches()) {
            sql.getConfig().getConfiguration().setString(set.group(1), set.group(2));
            return null;
        }
        return sql.executeSql(statement);
    }

    /** The script's statements in order; the rows of the last one if it is a query (its changelog applied). */
    static List<Row> run(SqlScripts scripts, String script) throws Exception {
        List<String> statements = SqlScripts.statements(scripts.render(script));
        Configuration settings = new Configuration();
        for (String statement : statements) {
            Matcher set = SET.matcher(statement);
            if (set.matches()) {
                settings.setString(set.group(1), set.group(2));
            }
        }
        StreamTableEnvironment sql = session(scripts, settings);
        List<Row> rows = new ArrayList<>();
        for (String statement : statements) {
            TableResult result = execute(sql, statement);
            rows = new ArrayList<>();
            if (result == null) {
                continue;
            }
            if (result.getJobClient().isPresent() && result.getResultKind() != ResultKind.SUCCESS_WITH_CONTENT) {
                result.await(); // INSERT INTO: bounded sources in tests, so it ends
                continue;
            }
            try (CloseableIterator<Row> it = result.collect()) {
                while (it.hasNext()) {
                    Row r = it.next();
                    RowKind kind = r.getKind();
                    r.setKind(RowKind.INSERT);
                    if (kind == RowKind.UPDATE_BEFORE || kind == RowKind.DELETE) {
                        if (!rows.remove(r)) {
                            throw new AssertionError("the changelog retracts a row it never emitted: " + r);
                        }
                    } else {
                        rows.add(r);
                    }
                }
            }
        }
        return rows;
    }
}
