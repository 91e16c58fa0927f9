package framework_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

var _ = Describe("FilterByPrefix", func() {
	rs := []devstack.Resource{
		{Kind: devstack.KindNetwork, ID: "net-a", Name: "sg-a-net"},
		{Kind: devstack.KindServer, ID: "srv-a", Name: "sg-a-server"},
		{Kind: devstack.KindPort, ID: "port-a", Name: "compute:testaz1", NetworkID: "shared-net", DeviceID: "srv-a"},
		{Kind: devstack.KindFloatingIP, ID: "fip-a", Name: "172.24.4.50", PortID: "port-a"},
		{Kind: devstack.KindPort, ID: "dhcp-a", Name: "network:dhcp", NetworkID: "net-a", DeviceID: "dhcp-device"},
		{Kind: devstack.KindFloatingIP, ID: "fip-a2", Name: "172.24.4.51", Description: "sg-a"},
		{Kind: devstack.KindNetwork, ID: "net-b", Name: "sg-b-net"},
		{Kind: devstack.KindPort, ID: "port-b", Name: "", NetworkID: "net-b"},
		{Kind: devstack.KindFloatingIP, ID: "fip-none", Name: "172.24.4.52"},
		{Kind: devstack.KindPort, ID: "port-none", Name: "network:router_gateway", NetworkID: "public", DeviceID: "router-elsewhere"},
	}
	idsOf := func(rs []devstack.Resource) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}

	It("attributes unnamed ports and floating IPs through what they belong to, and floating IPs by description", func() {
		Expect(idsOf(framework.FilterByPrefix(rs, "sg-a"))).To(ConsistOf("net-a", "srv-a", "port-a", "fip-a", "dhcp-a", "fip-a2"))
		Expect(idsOf(framework.FilterByPrefix(rs, "sg-b"))).To(ConsistOf("net-b", "port-b"))
		Expect(framework.FilterByPrefix(rs, "sg-c")).To(BeEmpty())
	})

	It("returns everything for an empty prefix", func() {
		Expect(framework.FilterByPrefix(rs, "")).To(HaveLen(len(rs)))
	})
})
