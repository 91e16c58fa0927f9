//go:build linux

package local

import (
	"fmt"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("the VM budget", func() {
	DescribeTable("shares what the services leave of the machine's memory between the nodes, in idle VMs",
		func(total uint64, want int) { Expect(vmsPerNode(total)).To(Equal(want)) },
		Entry("24 GiB: 16 GiB for VMs of 320 MiB, on two nodes", uint64(24<<30), 25),
		Entry("16 GiB", uint64(16<<30), 12),
		Entry("a small machine still takes the five a suite needs per node", uint64(8<<30), minVMsPerNode),
		Entry("memory unknown", uint64(0), minVMsPerNode),
		Entry("a large machine stops at nova's default cap", uint64(256<<30), maxVMsPerNode),
	)

	It("reads the machine's memory", func() {
		Expect(memTotal()).To(BeNumerically(">", 0), "MemTotal in /proc/meminfo")
	})

	It("has nova's scheduler count servers per node with real VMs only", func() {
		if _, err := os.Stat("/etc/nova/api-paste.ini"); err != nil {
			Skip("nova-api is not installed (/etc/nova/api-paste.ini): the configs cannot be rendered")
		}
		cfg := devstack.DefaultConfig().WithDefaults()
		for virt, want := range map[string]bool{VirtQEMU: true, VirtFake: false} {
			h, err := New(WithStateDir(GinkgoT().TempDir()), WithVirt(virt))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.MkdirAll(h.path("etc"), 0o700)).To(Succeed())
			Expect(h.renderConfigs(cfg)).To(Succeed())
			b, err := os.ReadFile(h.etc("nova/nova.conf"))
			Expect(err).NotTo(HaveOccurred())
			budget := fmt.Sprintf("\nmax_instances_per_host = %d\n", h.VMsPerNode())
			if want {
				Expect(string(b)).To(And(ContainSubstring(budget), MatchRegexp(`\nenabled_filters = [A-Za-z,]*NumInstancesFilter\n`)), "virt %s", virt)
			} else {
				Expect(string(b)).NotTo(ContainSubstring("max_instances_per_host"), "virt %s", virt)
			}
		}
	})
})
