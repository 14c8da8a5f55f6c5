package io.sluice.udfs;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * {@code TIME_LAG_MS(ts)}: now minus {@code ts} in milliseconds — the time lag of a record or a row
 * (e.g. {@code TIME_LAG_MS(MAX(newest_event_at))} per shard). {@code ts}: a {@code TIMESTAMP(3)} read as
 * UTC, a {@code TIMESTAMP_LTZ(3)}, or epoch milliseconds. Evaluated per row, never constant-folded.
 */
public class TimeLagMs extends ScalarFunction {
    public Long eval(@DataTypeHint("TIMESTAMP(3)") LocalDateTime ts) {
        return ts == null ? null : lag(ts.toInstant(ZoneOffset.UTC).toEpochMilli());
    }

    public Long eval(@DataTypeHint("TIMESTAMP_LTZ(3)") Instant ts) {
        return ts == null ? null : lag(ts.toEpochMilli());
    }

    public Long eval(Long epochMs) {
        return epochMs == null ? null : lag(epochMs);
    }

    private static long lag(long epochMs) {
        return System.currentTimeMillis() - epochMs;
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
