package io.sluice.cluster;

import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.client.deployment.StandaloneClusterId;
import org.apache.flink.client.program.PackagedProgram;
import org.apache.flink.client.program.PackagedProgramUtils;
import org.apache.flink.client.program.rest.RestClusterClient;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.client.JobStatusMessage;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobmaster.JobResult;
import org.apache.flink.runtime.jobgraph.SavepointRestoreSettings;

import java.io.File;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The job side of the Flink CLI against a session cluster, through its REST API (what
 * {@code flink run -d}, {@code list}, {@code cancel} and {@code stop --savepointPath} do): the job's
 * {@code main()} runs here, in the client, and builds the job graph; the graph and the jar go to the
 * cluster.
 */
public final class ClusterJobs implements AutoCloseable {
    private final Configuration conf;
    private final RestClusterClient<StandaloneClusterId> client;

    /** @param conf the cluster's configuration ({@code flink-conf/}), with the web port it runs on */
    public ClusterJobs(Configuration conf, int webPort) throws Exception {
        this.conf = new Configuration(conf);
        this.conf.set(RestOptions.ADDRESS, "localhost");
        this.conf.set(RestOptions.PORT, webPort);
        // main() runs here, in a child-first loader over the jar. Flink's own classes (the Kafka connector
        // included) always come parent-first: when this JVM has the connector too (a test JVM does), Kafka's
        // classes must come from the same loader, or the connector and the jar see two OffsetResetStrategy classes.
        List<String> parentFirst = new ArrayList<>(this.conf.get(CoreOptions.ALWAYS_PARENT_FIRST_LOADER_PATTERNS_ADDITIONAL));
        parentFirst.add("org.apache.kafka.");
        this.conf.set(CoreOptions.ALWAYS_PARENT_FIRST_LOADER_PATTERNS_ADDITIONAL, parentFirst);
        this.client = new RestClusterClient<>(this.conf, StandaloneClusterId.getInstance());
    }

    /**
     * Submits {@code mainClass} of {@code jar} with {@code args} (Sluice's own options), detached, as job {@code id};
     * from {@code savepoint} if not null. Returns once the cluster has accepted it.
     */
    public void submit(File jar, String mainClass, List<String> args, String savepoint, boolean allowNonRestoredState, JobID id) throws Exception {
        SavepointRestoreSettings restore = savepoint == null ? SavepointRestoreSettings.none()
                : SavepointRestoreSettings.forPath(savepoint, allowNonRestoredState);
        Configuration jobConf = new Configuration(conf);
        SavepointRestoreSettings.toConfiguration(restore, jobConf); // the job graph takes it from here, as flink run -s does
        PackagedProgram program = PackagedProgram.newBuilder()
                .setJarFile(jar)
                .setEntryPointClassName(mainClass)
                .setArguments(args.toArray(String[]::new))
                .setConfiguration(jobConf)
                .setSavepointRestoreSettings(restore)
                .build();
        try {
            JobGraph graph = PackagedProgramUtils.createJobGraph(program, jobConf, jobConf.get(CoreOptions.DEFAULT_PARALLELISM), id, false);
            if (!restore.equals(graph.getSavepointRestoreSettings())) {
                throw new IllegalStateException("the job graph lost its savepoint restore settings " + restore);
            }
            JobID accepted = client.submitJob(graph).get(120, TimeUnit.SECONDS);
            if (!accepted.equals(id)) {
                throw new IllegalStateException("the cluster accepted job " + accepted + ", not the id " + id + " the client chose");
            }
        } finally {
            program.close();
        }
    }

    /** The cluster's jobs, newest first (running and ended ones the JobManager still remembers). */
    public List<JobStatusMessage> list() throws Exception {
        Collection<JobStatusMessage> jobs = client.listJobs().get(30, TimeUnit.SECONDS);
        List<JobStatusMessage> sorted = new ArrayList<>(jobs);
        sorted.sort(Comparator.comparingLong(JobStatusMessage::getStartTime).reversed());
        return sorted;
    }

    public void cancel(JobID job) throws Exception {
        client.cancel(job).get(60, TimeUnit.SECONDS);
    }

    /**
     * Stops the job with a savepoint (sources stop first, then a final savepoint; the Kafka sinks
     * commit their last transactions) and returns the savepoint's path, for {@code --from-savepoint}.
     * {@code dir} null means {@code execution.checkpointing.savepoint-dir} of the cluster.
     */
    public String stopWithSavepoint(JobID job, String dir) throws Exception {
        return client.stopWithSavepoint(job, false, dir, SavepointFormatType.CANONICAL).get(10, TimeUnit.MINUTES);
    }

    /** The job's state as the cluster reports it, ended jobs included (while the JobManager remembers them). */
    public JobStatus status(JobID job) throws Exception {
        return client.getJobStatus(job).get(30, TimeUnit.SECONDS);
    }

    /** Why an ended job ended: its failure's message, or its final state if it did not fail. */
    public String outcome(JobID job) throws Exception {
        JobResult result = client.requestJobResult(job).get(30, TimeUnit.SECONDS);
        return result.getSerializedThrowable()
                .map(t -> t.getOriginalErrorClassName() + ": " + t.getMessage())
                .orElse(String.valueOf(result.getJobStatus().orElse(null)));
    }

    @Override
    public void close() {
        client.close();
    }
}
