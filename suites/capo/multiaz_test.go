package capo_test

import (
	"context"
	"strconv"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/framework"
)

var _ = Describe("CAPO's multi-az flavor on the DevStack", Label("capo", "multi-az"), Serial, func() {
	It("spreads machines over both zones, with volumes in the zones CAPO's multi-AZ spec asserts, and reports a server deleted behind its back", func(ctx SpecContext) {
		clusterName := framework.UniqueName("capo")
		namespace := clusterName
		createNamespace(ctx, namespace)
		createKeypair(ctx, clusterName)
		framework.DeferLeakCheck(ctx, framework.DeferLeakCheckInput{DevStack: suite.DevStack}, suite.E2EConfig.GetIntervals("capo", "wait-delete-cluster")...)
		failureDomain := suite.E2EConfig.MustGetVariable("OPENSTACK_FAILURE_DOMAIN")
		altDomain := suite.E2EConfig.MustGetVariable("OPENSTACK_FAILURE_DOMAIN_ALT")
		volumeTypeAlt := suite.E2EConfig.MustGetVariable("OPENSTACK_VOLUME_TYPE_ALT")

		// As CAPO's multi-AZ spec: three control plane machines, two
		// workers, unpinned: the flavor names its zones itself.
		framework.WaitForSecondAZ(ctx, framework.WaitForSecondAZInput{DevStack: suite.DevStack}, suite.E2EConfig.GetIntervals("capo", "wait-alt-az")...)
		applyFlavor(ctx, "multi-az", namespace, map[string]string{
			"CLUSTER_NAME":                 clusterName,
			"NAMESPACE":                    namespace,
			"OPENSTACK_SSH_KEY_NAME":       clusterName,
			"OPENSTACK_IMAGE_NAME":         localImage,
			"OPENSTACK_BASTION_IMAGE_NAME": localImage,
			"CONTROL_PLANE_MACHINE_COUNT":  "3",
			"WORKER_MACHINE_COUNT":         "2",
		}, false, func(o *unstructured.Unstructured) {
			// No node joins, so the control plane never becomes stable:
			// without this, the MachineSet's preflight checks would
			// create no worker Machine at all.
			if o.GetKind() == "MachineDeployment" {
				a := o.GetAnnotations()
				if a == nil {
					a = map[string]string{}
				}
				a[clusterv1.MachineSetSkipPreflightChecksAnnotation] = "All"
				o.SetAnnotations(a)
			}
		})
		DeferCleanup(deleteCluster, namespace, clusterName)

		By("waiting for the OpenStackCluster to be ready")
		waitForOpenStackCluster(ctx, namespace, clusterName)

		By("waiting for the first control plane machine's server and the workers' machines")
		admin := suite.DevStack.AdminClients(ctx)
		var cp clusterv1.Machine
		var workers []clusterv1.Machine
		var server servers.Server
		Eventually(func(g Gomega, ctx context.Context) {
			if err := mgmt.Err(); err != nil {
				StopTrying("a manager died").Wrap(err).Now()
			}
			var cps []clusterv1.Machine
			cps, workers = clusterMachines(ctx, g, namespace, clusterName)
			// KubeadmControlPlane creates one machine, then waits for it to
			// initialise the control plane before the next two.
			g.Expect(cps).To(HaveLen(1), "control plane machines")
			g.Expect(workers).To(HaveLen(2), "worker machines")
			cp = cps[0]
			g.Expect(cp.Spec.FailureDomain).To(BeElementOf(failureDomain, altDomain), "control plane machine %s's failure domain", cp.Name)
			all := clusterServers(ctx, admin, clusterName)
			g.Expect(all).To(ContainElement(HaveField("Name", cp.Spec.InfrastructureRef.Name)), "the control plane machine's server")
			for _, s := range all {
				if s.Name == cp.Spec.InfrastructureRef.Name {
					server = s
				}
			}
			g.Expect(server.Status).To(Equal("ACTIVE"), "server %s", server.Name)
		}).WithContext(ctx).WithTimeout(timeout("wait-control-plane")).WithPolling(polling("wait-control-plane")).Should(Succeed())

		By("checking where the machines, the server and its volumes are")
		for _, w := range workers {
			Expect(w.Spec.FailureDomain).To(Equal(altDomain), "worker machine %s's failure domain", w.Name)
		}
		Expect(server.AvailabilityZone).To(Equal(cp.Spec.FailureDomain), "server %s is in its machine's zone", server.Name)
		Expect(server.AttachedVolumes).To(HaveLen(2), "server %s's root and extra volumes", server.Name)
		byName := map[string]*volumes.Volume{}
		for _, a := range server.AttachedVolumes {
			v, err := volumes.Get(ctx, admin.BlockStorage, a.ID).Extract()
			Expect(err).NotTo(HaveOccurred(), "volume %s", a.ID)
			byName[v.Name] = v
		}
		root, extra := byName[server.Name+"-root"], byName[server.Name+"-extravol"]
		Expect(root).NotTo(BeNil(), "volume %s-root among %v", server.Name, byName)
		Expect(extra).NotTo(BeNil(), "volume %s-extravol among %v", server.Name, byName)
		Expect(root.Size).To(Equal(25))
		Expect(root.Bootable).To(Equal("true"), "the root volume is made from the image")
		Expect(extra.Size).To(Equal(1))
		node := map[string]string{failureDomain: "controller", altDomain: "worker"}[cp.Spec.FailureDomain]
		for _, v := range []*volumes.Volume{root, extra} {
			Expect(v.AvailabilityZone).To(Equal(cp.Spec.FailureDomain), "volume %s is in the machine's zone", v.Name)
			Expect(v.VolumeType).NotTo(Equal(volumeTypeAlt), "volume %s has the default type", v.Name)
			Expect(v.Host).To(Equal(node+"@ceph#ceph"), "volume %s is served by its zone's cinder-volume", v.Name)
		}
		AddReportEntry("workers' servers", "not checked: a worker's bootstrap data waits for an initialised control plane, and no node joins here, so CAPO creates no server (or volume) for "+altDomain+"'s machines")

		osmName := cp.Spec.InfrastructureRef.Name
		// CAPO reports a deleted server only once it has seen it ready:
		// an OpenStackServer that never was stays "waiting" for ever.
		By("waiting for CAPO to see the control plane server ready")
		Eventually(func(g Gomega, ctx context.Context) {
			oss := &unstructured.Unstructured{}
			oss.SetAPIVersion("infrastructure.cluster.x-k8s.io/v1alpha1")
			oss.SetKind("OpenStackServer")
			g.Expect(proxy.GetClient().Get(ctx, client.ObjectKey{Namespace: namespace, Name: osmName}, oss)).To(Succeed())
			ready, _, _ := unstructured.NestedBool(oss.Object, "status", "ready")
			g.Expect(ready).To(BeTrue(), "OpenStackServer %s status.ready", osmName)
		}).WithContext(ctx).WithTimeout(timeout("wait-control-plane")).WithPolling(polling("wait-control-plane")).Should(Succeed())

		By("deleting the control plane server behind CAPO's back")
		Expect(servers.Delete(ctx, admin.Compute, server.ID).ExtractErr()).To(Succeed())
		retries := 0
		Eventually(func(g Gomega, ctx context.Context) {
			osm := getOpenStackMachine(ctx, namespace, osmName)
			conds, _, _ := unstructured.NestedSlice(osm.Object, "status", "conditions")
			var ready map[string]interface{}
			for _, c := range conds {
				if m, ok := c.(map[string]interface{}); ok && m["type"] == "InstanceReady" {
					ready = m
				}
			}
			if ready == nil || ready["reason"] != "InstanceDeleted" {
				// A harmless change makes CAPO reconcile now, as CAPO's
				// spec does, rather than at its next resync. Any other
				// condition may be a stale one (False, WaitingForBootstrapData,
				// from before the server existed), so it pokes until then.
				retries++
				a := osm.GetAnnotations()
				if a == nil {
					a = map[string]string{}
				}
				a["stackgate.io/e2e-retries"] = strconv.Itoa(retries)
				osm.SetAnnotations(a)
				g.Expect(proxy.GetClient().Update(ctx, osm)).To(Succeed())
			}
			g.Expect(ready).To(And(
				HaveKeyWithValue("status", "False"),
				HaveKeyWithValue("reason", "InstanceDeleted"),
				HaveKeyWithValue("message", "The server was unexpectedly deleted"),
				HaveKeyWithValue("severity", "Error"),
			), "OpenStackMachine %s's InstanceReady condition", osmName)
		}).WithContext(ctx).WithTimeout(timeout("wait-machine-status")).WithPolling(polling("wait-machine-status")).Should(Succeed())

		By("deleting the Cluster")
		deleteCluster(ctx, namespace, clusterName)
		AddReportEntry("stops before", "no node joins the workload cluster (the guest image runs no kubelet), so KubeadmControlPlane never creates its second and third machines")
	})
})

// clusterMachines lists the cluster's Machines: control plane and others.
func clusterMachines(ctx context.Context, g Gomega, namespace, clusterName string) (controlPlane, others []clusterv1.Machine) {
	var l clusterv1.MachineList
	g.Expect(proxy.GetClient().List(ctx, &l, client.InNamespace(namespace), client.MatchingLabels{clusterv1.ClusterNameLabel: clusterName})).To(Succeed())
	for _, m := range l.Items {
		if _, ok := m.Labels[clusterv1.MachineControlPlaneLabel]; ok {
			controlPlane = append(controlPlane, m)
		} else {
			others = append(others, m)
		}
	}
	return controlPlane, others
}
