package devstack_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("the table of resource kinds", func() {
	It("drives both the leak check and the dumps: every Kind has one row, no dump is written twice", func() {
		kinds, dumps := devstack.ResourceKindsForTest()
		var compared, dumped []string
		for i := range kinds {
			Expect(kinds[i] != "" || dumps[i] != "").To(BeTrue(), "row %d is used by nothing", i)
			if kinds[i] != "" {
				compared = append(compared, kinds[i])
			}
			if dumps[i] != "" {
				dumped = append(dumped, dumps[i])
			}
		}
		Expect(compared).To(ConsistOf(devstack.KindServer, devstack.KindPort, devstack.KindNetwork, devstack.KindRouter,
			devstack.KindFloatingIP, devstack.KindSecurityGroup, devstack.KindVolume, devstack.KindLoadBalancer, devstack.KindImage))
		Expect(dumped).To(ContainElements("servers", "ports", "networks", "subnets", "volumes", "load-balancers", "network-agents"))
		seen := map[string]bool{}
		for _, d := range dumped {
			Expect(seen[d]).To(BeFalse(), "dump %s twice", d)
			seen[d] = true
		}
	})
})
