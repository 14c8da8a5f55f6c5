package io.sluice.udfs.format;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.formats.avro.registry.confluent.RegistryAvroFormatFactory;
import org.apache.flink.metrics.Counter;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.Set;

/**
 * Format {@code 'sluice-avro-confluent'}: Flink's {@code avro-confluent} (same options: {@code url},
 * {@code subject}, {@code properties.*}, ...) for reading Sluice's topics in SQL, except that a record
 * it cannot decode (bad bytes, unknown schema id) is skipped instead of failing the query. Sluice's
 * jobs put such records on the dead-letter topic with the reason (the {@code dead_letters} view);
 * here each skip is counted in the source's metric {@code undecodableRecordsSkipped} and the first ten
 * are logged with the cause. Plain {@code avro-confluent} fails and restarts the query on the first one.
 */
public class SkippingAvroConfluentFormatFactory implements DeserializationFormatFactory {
    public static final String IDENTIFIER = "sluice-avro-confluent";

    private final RegistryAvroFormatFactory avro = new RegistryAvroFormatFactory();

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return avro.requiredOptions();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return avro.optionalOptions();
    }

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        DecodingFormat<DeserializationSchema<RowData>> inner = avro.createDecodingFormat(context, formatOptions);
        return new DecodingFormat<>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(DynamicTableSource.Context c, DataType physicalDataType) {
                return new Skipping(inner.createRuntimeDecoder(c, physicalDataType));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return inner.getChangelogMode();
            }
        };
    }

    /** Decodes with the wrapped schema; a record it cannot decode is counted, logged (the first ten) and skipped. */
    static final class Skipping implements DeserializationSchema<RowData> {
        private static final long serialVersionUID = 1L;
        private static final Logger LOG = LoggerFactory.getLogger(Skipping.class);

        private final DeserializationSchema<RowData> inner;
        private transient Counter skipped;

        Skipping(DeserializationSchema<RowData> inner) {
            this.inner = inner;
        }

        @Override
        public void open(InitializationContext context) throws Exception {
            inner.open(context);
            skipped = context.getMetricGroup().counter("undecodableRecordsSkipped");
        }

        @Override
        public RowData deserialize(byte[] message) throws IOException {
            try {
                return inner.deserialize(message);
            } catch (IOException | RuntimeException e) {
                skip(e);
                return null;
            }
        }

        @Override
        public void deserialize(byte[] message, Collector<RowData> out) throws IOException {
            RowData row = deserialize(message);
            if (row != null) {
                out.collect(row);
            }
        }

        private void skip(Exception e) {
            skipped.inc();
            if (skipped.getCount() <= 10) {
                Throwable cause = e.getCause() == null ? e : e.getCause();
                LOG.warn("{}: skipped an undecodable record ({} so far; Sluice's jobs dead-letter these): {}", IDENTIFIER, skipped.getCount(), cause.toString());
            }
        }

        @Override
        public boolean isEndOfStream(RowData next) {
            return inner.isEndOfStream(next);
        }

        @Override
        public TypeInformation<RowData> getProducedType() {
            return inner.getProducedType();
        }
    }
}
