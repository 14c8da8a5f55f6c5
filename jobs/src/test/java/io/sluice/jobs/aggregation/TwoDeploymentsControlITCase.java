package io.sluice.jobs.aggregation;

import io.sluice.testkit.SluiceStackExtension;
import io.sluice.testkit.TestFlink;
import io.sluice.testkit.TestStack;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The control of {@code AggregationJobITCase}'s two-deployments test: two deployments sharing one {@code deployment.id}
 * fence each other's push-queue producers. It runs on a MiniCluster of its own, because a fenced sink that hangs while
 * closing can cost a TaskManager, which every later test of a shared MiniCluster would then wait for.
 */
@ExtendWith(SluiceStackExtension.class)
class TwoDeploymentsControlITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = TestFlink.miniCluster();

    @Test
    void twoDeploymentsSharingOneIdFenceEachOther(TestStack base, @InjectMiniCluster MiniCluster cluster) throws Exception {
        new AggregationJobITCase().theControlTwoDeploymentsSharingOneIdFenceEachOther(base, cluster);
    }
}
