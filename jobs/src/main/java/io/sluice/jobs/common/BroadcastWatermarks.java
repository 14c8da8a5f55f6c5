package io.sluice.jobs.common;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;

/**
 * Watermarks for a rules stream that is broadcast into an event-time operator: always the maximum,
 * so the operator's watermark is the event stream's alone. (A broadcast input without watermarks
 * would hold the operator's watermark at its minimum forever, and its timers would never fire.)
 */
public final class BroadcastWatermarks<T> implements WatermarkStrategy<T> {
    private static final long serialVersionUID = 1L;

    @Override
    public WatermarkGenerator<T> createWatermarkGenerator(WatermarkGeneratorSupplier.Context context) {
        return new WatermarkGenerator<>() {
            @Override
            public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
            }

            @Override
            public void onPeriodicEmit(WatermarkOutput output) {
                output.emitWatermark(new Watermark(Long.MAX_VALUE));
            }
        };
    }
}
