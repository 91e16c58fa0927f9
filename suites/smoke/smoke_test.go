package smoke_test

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

var _ = Describe("smoke", Label("smoke"), func() {
	var prefix string

	BeforeEach(func(ctx SpecContext) {
		// Record whether the worker's zone was already usable: these specs
		// must not wait for it, and the report shows that they did not.
		alt := suite.DevStack.Config().FailureDomainAlt
		usable, seen := framework.AZUsable(ctx, suite.DevStack, alt)
		AddReportEntry("second AZ usable at spec start", fmt.Sprintf("%s usable=%t (%s), %s after setup started",
			alt, usable, seen, time.Since(suite.DevStack.SetupStarted).Round(time.Millisecond)))
		prefix = framework.UniqueName("sg-smoke")
		framework.DeferLeakCheck(ctx, framework.DeferLeakCheckInput{DevStack: suite.DevStack, NamePrefix: prefix},
			suite.E2EConfig.GetIntervals("smoke", "wait-teardown")...)
	})

	It("issues a keystone token whose catalog has the core services", func(ctx SpecContext) {
		pc, err := suite.DevStack.Environment.ProviderClient(ctx, suite.DevStack.Config().Cloud)
		Expect(err).NotTo(HaveOccurred(), "Couldn't authenticate as cloud %q", suite.DevStack.Config().Cloud)
		Expect(pc.Token()).NotTo(BeEmpty(), "Keystone issued no token")
		r, ok := pc.GetAuthResult().(tokens.CreateResult)
		Expect(ok).To(BeTrue(), "Keystone v3 token expected, got %T", pc.GetAuthResult())
		catalog, err := r.ExtractServiceCatalog()
		Expect(err).NotTo(HaveOccurred())
		var types []string
		for _, e := range catalog.Entries {
			types = append(types, e.Type)
		}
		for _, want := range []string{"identity", "compute", "network", "image", "volumev3", "placement"} {
			Expect(slices.Contains(types, want)).To(BeTrue(), "Service %q missing from the catalog %v", want, types)
		}
	})

	It("hands out a provider client as CAPO's scope.NewProviderClient does, through the tunnel", func(ctx SpecContext) {
		cloud := suite.DevStack.Config().Cloud
		pc, opts, projectID, err := suite.DevStack.ProviderClient(ctx, cloud)
		Expect(err).NotTo(HaveOccurred(), "Couldn't get the provider client of cloud %q", cloud)
		Expect(pc).To(BeIdenticalTo(suite.DevStack.Clients(ctx).Provider), "The provider client is not the one Clients authenticated")
		Expect(opts.Cloud).To(Equal(cloud))
		Expect(opts.AuthInfo).NotTo(BeNil(), "The client options carry no auth of cloud %q", cloud)
		Expect(opts.AuthInfo.ProjectName).To(Equal("demo"))
		Expect(opts.RegionName).NotTo(BeEmpty(), "The client options name no region")
		// CAPO's callers build service clients from the options and use them.
		compute, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: opts.RegionName})
		Expect(err).NotTo(HaveOccurred())
		_, err = servers.List(compute, servers.ListOpts{Limit: 1}).AllPages(ctx)
		Expect(err).NotTo(HaveOccurred(), "Couldn't list servers with the provider client")
		proj, err := projects.Get(ctx, suite.DevStack.AdminClients(ctx).Identity, projectID).Extract()
		Expect(err).NotTo(HaveOccurred(), "Couldn't look project %s up", projectID)
		Expect(proj.Name).To(Equal(opts.AuthInfo.ProjectName), "The project ID is not the token's project's")

		_, _, _, err = suite.DevStack.ProviderClient(ctx, "no-such-cloud")
		Expect(err).To(MatchError(ContainSubstring(`"no-such-cloud"`)))
	})

	It("creates a network with a router to the external network", func(ctx SpecContext) {
		c := suite.DevStack.Clients(ctx)
		ext := suite.DevStack.Variables[devstack.VarExternalNetworkID]
		Expect(ext).NotTo(BeEmpty(), "%s is not set", devstack.VarExternalNetworkID)
		tn := framework.CreateTenantNetwork(ctx, framework.CreateTenantNetworkInput{Clients: c, Name: prefix, CIDR: "10.90.0.0/24", ExternalNetworkID: ext})
		r, err := routers.Get(ctx, c.Network, tn.Router.ID).Extract()
		Expect(err).NotTo(HaveOccurred(), "Couldn't get router %q", prefix)
		Expect(r.GatewayInfo.NetworkID).To(Equal(ext), "Router %q has its gateway on the wrong network", prefix)
		pages, err := ports.List(c.Network, ports.ListOpts{DeviceID: r.ID, NetworkID: tn.Network.ID}).AllPages(ctx)
		Expect(err).NotTo(HaveOccurred())
		ifaces, err := ports.ExtractPorts(pages)
		Expect(err).NotTo(HaveOccurred())
		Expect(ifaces).To(HaveLen(1), "Router %q should have one interface on network %q", prefix, prefix)
		Expect(ifaces[0].FixedIPs).To(ContainElement(HaveField("IPAddress", tn.Subnet.GatewayIP)), "The router's interface should hold the subnet's gateway %s", tn.Subnet.GatewayIP)
	})

	It("boots a server in the first availability zone", func(ctx SpecContext) {
		c := suite.DevStack.Clients(ctx)
		az := suite.DevStack.Config().FailureDomain
		tn := framework.CreateTenantNetwork(ctx, framework.CreateTenantNetworkInput{Clients: c, Name: prefix, CIDR: "10.91.0.0/24"})
		s := framework.CreateServer(ctx, framework.CreateServerInput{
			Clients: c, Name: prefix, AvailabilityZone: az, Networks: []servers.Network{{UUID: tn.Network.ID}},
			DeleteIntervals: suite.E2EConfig.GetIntervals("smoke", "wait-server-deleted"),
		}, suite.E2EConfig.GetIntervals("smoke", "wait-server-active")...)
		framework.ExpectServersInAZ(ctx, framework.ExpectServersInAZInput{Clients: c, ServerIDs: []string{s.ID}, AvailabilityZone: az})
	})
})

var _ = Describe("leak check", Label("smoke"), func() {
	It("notices what a spec left behind, unnamed ports and floating IPs included, and only its own", func(ctx SpecContext) {
		c := suite.DevStack.Clients(ctx)
		ext := suite.DevStack.Variables[devstack.VarExternalNetworkID]
		Expect(ext).NotTo(BeEmpty(), "%s is not set", devstack.VarExternalNetworkID)
		prefix := framework.UniqueName("sg-leak")
		before, err := suite.DevStack.Environment.Snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		// deleteLater deletes what the spec leaves on purpose, should an
		// expectation fail before the spec deletes it itself.
		deleteLater := func(what string, del func(ctx SpecContext) error) {
			DeferCleanup(func(ctx SpecContext) {
				if err := del(ctx); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					Expect(err).NotTo(HaveOccurred(), "Couldn't delete %s", what)
				}
			})
		}
		n, err := networks.Create(ctx, c.Network, networks.CreateOpts{Name: prefix}).Extract()
		Expect(err).NotTo(HaveOccurred(), "Couldn't create network %q", prefix)
		deleteLater("network "+prefix, func(ctx SpecContext) error { return networks.Delete(ctx, c.Network, n.ID).ExtractErr() })
		// An unnamed port on the spec's network, and a floating IP known by
		// its description only: neither has the prefix in its name.
		p, err := ports.Create(ctx, c.Network, ports.CreateOpts{NetworkID: n.ID}).Extract()
		Expect(err).NotTo(HaveOccurred(), "Couldn't create a port on network %q", prefix)
		deleteLater("port "+p.ID, func(ctx SpecContext) error { return ports.Delete(ctx, c.Network, p.ID).ExtractErr() })
		fip, err := floatingips.Create(ctx, c.Network, floatingips.CreateOpts{FloatingNetworkID: ext, Description: prefix}).Extract()
		Expect(err).NotTo(HaveOccurred(), "Couldn't allocate a floating IP")
		deleteLater("floating IP "+fip.FloatingIP, func(ctx SpecContext) error { return floatingips.Delete(ctx, c.Network, fip.ID).ExtractErr() })

		leaked, err := framework.LeakedSince(ctx, suite.DevStack, before, prefix)
		Expect(err).NotTo(HaveOccurred())
		// Neutron gives the floating IP a port of its own (device owner
		// network:floatingip), which goes with it.
		Expect(leaked).To(ConsistOf(HaveField("ID", n.ID), HaveField("ID", p.ID), HaveField("ID", fip.ID),
			And(HaveField("Kind", devstack.KindPort), HaveField("DeviceID", fip.ID))),
			"The leak check should list network %q, its unnamed port, the floating IP described %q and that IP's own port", prefix, prefix)
		other, err := framework.LeakedSince(ctx, suite.DevStack, before, prefix+"-other")
		Expect(err).NotTo(HaveOccurred())
		Expect(other).To(BeEmpty(), "Another spec's prefix must not see what %q made", prefix)

		Expect(floatingips.Delete(ctx, c.Network, fip.ID).ExtractErr()).To(Succeed())
		Expect(ports.Delete(ctx, c.Network, p.ID).ExtractErr()).To(Succeed())
		Expect(networks.Delete(ctx, c.Network, n.ID).ExtractErr()).To(Succeed())
		leaked, err = framework.LeakedSince(ctx, suite.DevStack, before, prefix)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaked).To(BeEmpty(), "Everything %q made was deleted", prefix)
	})
})
