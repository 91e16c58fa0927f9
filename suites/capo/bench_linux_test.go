//go:build linux

package capo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/framework"
)

// The benchmark of the management cluster and of CAPO on the DevStack:
// make bench-capo runs it (-ginkgo.label-filter=bench); other runs skip it.
var _ = Describe("benchmark: CAPO's without-lb flavor on the kind-free management cluster", Label("capo", "bench"), Serial, func() {
	It("times the managers' warm build, apply to ready, apply to servers and delete to nothing left, and measures memory", func(ctx SpecContext) {
		if !strings.Contains(GinkgoLabelFilter(), "bench") {
			Skip("a benchmark: make bench-capo runs it (-ginkgo.label-filter=bench)")
		}
		samples := 3
		if v := os.Getenv("BENCH_CAPO_SAMPLES"); v != "" {
			n, err := strconv.Atoi(v)
			Expect(err).NotTo(HaveOccurred(), "BENCH_CAPO_SAMPLES=%q: give a number of samples such as 3", v)
			samples = n
		}
		e := gmeasure.NewExperiment("CAPO on the DevStack, kind-free management cluster")
		// Added when the spec ends (also when it fails), so the report
		// shows every sample.
		defer AddReportEntry(e.Name, e)
		e.RecordDuration("management cluster ready (kube-apiserver, etcd, CRDs, webhooks, 5 managers)", mgmtStartTime)

		By("timing hack/capi/build.sh with a warm cache")
		e.MeasureDuration("managers' build, warm cache", func() {
			out, err := exec.CommandContext(ctx, "../../hack/capi/build.sh").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "hack/capi/build.sh: %s", out)
		})

		var host *local.Host
		if suite.DevStack.Environment.Host == "local" { // (*local.Host).Name()
			h, err := local.New(local.WithStateDir(suite.DevStack.Environment.StateDir), local.WithInstance(localInstance()))
			Expect(err).NotTo(HaveOccurred())
			host = h
		}
		for i := 0; i < samples; i++ {
			By(fmt.Sprintf("sample %d of %d", i+1, samples))
			clusterName := framework.UniqueName("capobench")
			createNamespace(ctx, clusterName)
			createKeypair(ctx, clusterName)
			vars := map[string]string{
				"CLUSTER_NAME": clusterName, "NAMESPACE": clusterName, "OPENSTACK_SSH_KEY_NAME": clusterName,
				"OPENSTACK_IMAGE_NAME": localImage, "OPENSTACK_BASTION_IMAGE_NAME": localImage,
			}
			before, err := suite.DevStack.Environment.Snapshot(ctx)
			Expect(err).NotTo(HaveOccurred())
			framework.WaitForSecondAZ(ctx, framework.WaitForSecondAZInput{DevStack: suite.DevStack}, suite.E2EConfig.GetIntervals("capo", "wait-alt-az")...)
			start := time.Now()
			applyFlavor(ctx, "without-lb", clusterName, vars, true, nil)
			DeferCleanup(deleteCluster, clusterName, clusterName)
			waitForOpenStackCluster(ctx, clusterName, clusterName)
			e.RecordDuration("apply → OpenStackCluster ready", time.Since(start))
			waitForServers(ctx, clusterName)
			e.RecordDuration("apply → bastion and first control plane server ACTIVE", time.Since(start))

			mgmtPSS := childrenPSS()
			e.RecordValue("management cluster PSS", float64(mgmtPSS)/(1<<20), gmeasure.Units("MiB"))
			if host != nil {
				m, err := host.Memory(ctx)
				Expect(err).NotTo(HaveOccurred())
				e.RecordValue("local environment PSS (services and VMs)", float64(m.PSS)/(1<<20), gmeasure.Units("MiB"))
				e.RecordValue("both together PSS", float64(m.PSS+mgmtPSS)/(1<<20), gmeasure.Units("MiB"))
			}

			// Deleting before CAPO associated the API server's floating IP
			// would leave it allocated (see checkAPIServerFloatingIP).
			checkAPIServerFloatingIP(ctx, clusterName, clusterName)
			e.RecordDuration("apply → control plane endpoint's floating IP on the server", time.Since(start))

			start = time.Now()
			deleteCluster(ctx, clusterName, clusterName)
			Eventually(func(ctx context.Context) ([]devstack.Resource, error) {
				now, err := suite.DevStack.Environment.Snapshot(ctx)
				if err != nil {
					return nil, err
				}
				return devstack.Diff(before, now), nil
			}).WithContext(ctx).WithTimeout(timeout("wait-delete-cluster")).WithPolling(time.Second).Should(BeEmpty(), "nothing left in OpenStack")
			e.RecordDuration("delete → nothing left in OpenStack", time.Since(start))
		}
	})
})

// localInstance is the local host's instance the suite uses (see
// framework.EnvLocalInstance).
func localInstance() string {
	if i := os.Getenv(framework.EnvLocalInstance); i != "" {
		return i
	}
	return local.DefaultInstance
}

// childrenPSS sums the proportional set sizes of this process's children
// and their descendants: kube-apiserver, etcd and the managers.
func childrenPSS() uint64 {
	GinkgoHelper()
	parents := map[int]int{}
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		_, rest, ok := strings.Cut(string(b), ") ")
		if f := strings.Fields(rest); ok && len(f) > 1 {
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				parents[pid] = ppid
			}
		}
	}
	self := os.Getpid()
	var sum uint64
	for pid := range parents {
		if !descends(parents, pid, self) {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue // exited meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				sum += kb << 10
			}
		}
	}
	return sum
}

func descends(parents map[int]int, pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		pid = parents[pid]
		if pid == ancestor {
			return true
		}
	}
	return false
}
