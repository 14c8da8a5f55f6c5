package io.sluice.jobs.common;

import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;

/**
 * Watermarks for a rules stream broadcast into an event-time operator: none, and the stream is idle
 * between records, so the operator's event time is the event stream's alone. A broadcast input
 * without watermarks would hold the operator's watermark at its minimum forever; one with the maximum
 * watermark would push it to the maximum whenever the event inputs are idle — for example while a
 * restarted job's sources get their splits back — and fire every timer, wiping window state.
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
                output.markIdle();
            }
        };
    }
}
