package io.sluice.jobs.common;

import org.apache.flink.util.FlinkUserCodeClassLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * Lets a TaskManager unload a job's classes once the job leaves it. Flink gives each job a class loader over the
 * jar on each TaskManager and drops it when the job holds no slot there any more (it was cancelled or stopped, or a
 * restart placed it elsewhere; a restart in the same slots keeps the loader); the loader and all its classes are freed
 * only if nothing outside the job still refers to them. pgjdbc's {@code Driver} registers itself
 * with {@link DriverManager}, a JDK class that outlives every job, the first time it loads: without this hook each
 * submission or rescale left its whole class loader (the job jar's classes, about 20 MB of metaspace) on every
 * TaskManager, and (with the Kafka writer's admin client, {@link AdminClosingKafkaSink}) the TaskManagers died of
 * {@code OutOfMemoryError: Metaspace} after about ten resubmissions.
 *
 * <p>Every operator that may load pgjdbc registers the hook; Flink runs it once, when it releases the loader.
 */
public final class ClassLoaderRelease {
    private static final Logger LOG = LoggerFactory.getLogger(ClassLoaderRelease.class);
    private static final String HOOK = "sluice-deregister-jdbc-drivers";

    private ClassLoaderRelease() {
    }

    /**
     * Registers the hook with Flink's {@code registerReleaseHookIfAbsent} (of a {@code RuntimeContext} or a sink's
     * {@code UserCodeClassLoader}): {@code register.accept(name, hook)}.
     */
    public static void deregisterDriversOnRelease(BiConsumer<String, Runnable> register) {
        register.accept(HOOK, ClassLoaderRelease::deregisterOwnDrivers);
    }

    /**
     * Deregisters the JDBC drivers defined by the loader that defined this class: the job jar's, where pgjdbc is too.
     * (Flink hands operators a wrapper around that loader, not the loader itself.) Returns how many.
     */
    public static int deregisterOwnDrivers() {
        ClassLoader own = ClassLoaderRelease.class.getClassLoader();
        if (!(own instanceof FlinkUserCodeClassLoader)) {
            return 0; // the job's classes are the JVM's own (a MiniCluster, ./sluice local): its drivers serve everyone
        }
        int n = 0;
        // DriverManager lists and deregisters only the drivers its caller's loader can see: this class's, the job's
        List<Driver> drivers = DriverManager.drivers().toList();
        for (Driver d : drivers) {
            if (d.getClass().getClassLoader() == own) {
                try {
                    DriverManager.deregisterDriver(d);
                    n++;
                } catch (SQLException | SecurityException e) {
                    LOG.warn("could not deregister JDBC driver {} of a released job: {}; its classes stay loaded", d.getClass().getName(), e.toString());
                }
            }
        }
        LOG.info("released the job's class loader: deregistered {} JDBC driver(s) it had registered", n);
        return n;
    }
}
