package io.sluice.testkit;

import io.sluice.testkit.EmbeddedStack;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The test kit: gives a test method a {@link TestStack} parameter with fresh topics (unique names)
 * and fresh databases on every shard, set up exactly as the local command does. The broker, the
 * registry stand-in and the Postgres servers are started once per test JVM (the same
 * {@link EmbeddedStack} the local command uses) and stopped when the test plan ends.
 * Use with {@code @ExtendWith(SluiceStackExtension.class)}; Flink comes from {@code MiniClusterExtension}.
 */
public final class SluiceStackExtension implements ParameterResolver {
    public static final int SHARDS = 2;
    private static final AtomicInteger SEQUENCE = new AtomicInteger();

    @Override
    public boolean supportsParameter(ParameterContext p, ExtensionContext e) {
        return p.getParameter().getType() == TestStack.class;
    }

    @Override
    public Object resolveParameter(ParameterContext p, ExtensionContext e) {
        EmbeddedStack stack = shared(e);
        return fresh(stack, Map.of());
    }

    /** A fresh topic set and databases; {@code overrides} are extra config keys (e.g. generator settings). */
    public static TestStack fresh(EmbeddedStack stack, Map<String, String> overrides) {
        String prefix = "t" + SEQUENCE.incrementAndGet() + "-" + Long.toHexString(System.nanoTime() & 0xffffff) + "-";
        try {
            EmbeddedStack.Namespace ns = stack.namespace(prefix, 4, overrides); // an override of kafka.partitions wins
            return new TestStack(stack, ns);
        } catch (Exception ex) {
            throw new IllegalStateException("the test kit could not prepare a fresh topic set and databases", ex);
        }
    }

    /** The per-JVM stack, started on first use and closed when JUnit closes its root store. */
    public static EmbeddedStack shared(ExtensionContext e) {
        return e.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
                .getOrComputeIfAbsent("sluice-embedded-stack", k -> new Holder(), Holder.class).stack;
    }

    private static final class Holder implements ExtensionContext.Store.CloseableResource {
        final EmbeddedStack stack;

        Holder() {
            try {
                stack = EmbeddedStack.start(SHARDS, 0);
            } catch (Exception e) {
                throw new IllegalStateException("the embedded stack did not start", e);
            }
        }

        @Override
        public void close() throws Exception {
            stack.close();
        }
    }
}
