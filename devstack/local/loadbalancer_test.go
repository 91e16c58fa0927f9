//go:build linux

package local_test

import (
	"context"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/listeners"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/pools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

// deleted deletes with del unless the resource is gone already.
func deleted(ctx context.Context, what string, del func(context.Context) error) {
	GinkgoHelper()
	if err := del(ctx); err != nil && !isNotFound(err) {
		Expect(err).NotTo(HaveOccurred(), "deleting %s", what)
	}
}

// lbStatus polls a load balancer's provisioning status, stopping at ERROR.
func lbStatus(c *gophercloud.ServiceClient, id string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		lb, err := loadbalancers.Get(ctx, c, id).Extract()
		if err != nil {
			return "", err
		}
		if lb.ProvisioningStatus == "ERROR" {
			return lb.ProvisioningStatus, StopTrying("load balancer " + id + " went to ERROR")
		}
		return lb.ProvisioningStatus, nil
	}
}

// routed is a tenant network behind a router to the external network.
type routed struct {
	public  networks.Network // the external network
	network *networks.Network
	subnet  *subnets.Subnet
	router  *routers.Router
}

// routedNetwork creates, as CAPO does for a cluster, a network with a
// subnet of cidr behind a router to the external network "public", all
// deleted after the spec or container that created them.
func routedNetwork(ctx context.Context, network *gophercloud.ServiceClient, what, cidr string) routed {
	GinkgoHelper()
	pub := must(networks.ExtractNetworks(must(networks.List(network, networks.ListOpts{Name: "public"}).AllPages(ctx))))
	Expect(pub).To(HaveLen(1), "external network public")
	net := must(networks.Create(ctx, network, networks.CreateOpts{Name: name(what + "net")}).Extract())
	DeferCleanup(func(ctx SpecContext) {
		deleted(ctx, "network", func(ctx context.Context) error { return networks.Delete(ctx, network, net.ID).ExtractErr() })
	})
	sub := must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: net.ID, Name: name(what + "subnet"), CIDR: cidr, IPVersion: gophercloud.IPv4}).Extract())
	DeferCleanup(func(ctx SpecContext) {
		deleted(ctx, "subnet", func(ctx context.Context) error { return subnets.Delete(ctx, network, sub.ID).ExtractErr() })
	})
	r := must(routers.Create(ctx, network, routers.CreateOpts{Name: name(what + "router"), GatewayInfo: &routers.GatewayInfo{NetworkID: pub[0].ID}}).Extract())
	DeferCleanup(func(ctx SpecContext) {
		deleted(ctx, "router", func(ctx context.Context) error { return routers.Delete(ctx, network, r.ID).ExtractErr() })
	})
	must(routers.AddInterface(ctx, network, r.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract())
	DeferCleanup(func(ctx SpecContext) {
		deleted(ctx, "router interface", func(ctx context.Context) error {
			_, err := routers.RemoveInterface(ctx, network, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract()
			return err
		})
	})
	return routed{public: pub[0], network: net, subnet: sub, router: r}
}

var _ = Describe("load balancers of the tenant user", func() {
	BeforeEach(needEnv, NodeTimeout(20*time.Minute))

	cfg := devstack.DefaultConfig()

	It("lists them with the roles DevStack gives the demo user", func(ctx SpecContext) {
		lbc := must(openstack.NewLoadBalancerV2(cloudClient(ctx, env, tun, cfg.Cloud), eo()))
		_, err := loadbalancers.List(lbc, nil).AllPages(ctx)
		Expect(err).NotTo(HaveOccurred(), "as %s: GET /v2/lbaas/loadbalancers", cfg.Cloud)
	}, SpecTimeout(2*time.Minute))

	It("gives a load balancer a VIP port that takes a floating IP, and deletes both with it", func(ctx SpecContext) {
		before := must(env.Snapshot(ctx))
		demo := cloudClient(ctx, env, tun, cfg.Cloud)
		network := must(openstack.NewNetworkV2(demo, eo()))
		lbc := must(openstack.NewLoadBalancerV2(demo, eo()))

		// What CAPO makes for a cluster: a network behind a router to the
		// external network, the API server's load balancer on its subnet
		// with a listener, a pool and a member, a floating IP on the VIP.
		rn := routedNetwork(ctx, network, "lb", "10.97.0.0/24")
		pub, net, sub, r := rn.public, rn.network, rn.subnet, rn.router

		lb := must(loadbalancers.Create(ctx, lbc, loadbalancers.CreateOpts{Name: name("lb"), VipSubnetID: sub.ID}).Extract())
		deleteLB := func(ctx context.Context) {
			deleted(ctx, "load balancer", func(ctx context.Context) error {
				return loadbalancers.Delete(ctx, lbc, lb.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr()
			})
			Eventually(func(ctx context.Context) error { return loadbalancers.Get(ctx, lbc, lb.ID).Err }).WithContext(ctx).
				WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(Satisfy(isNotFound), "load balancer %s deleted", lb.ID)
		}
		DeferCleanup(func(ctx SpecContext) { deleteLB(ctx) })
		active := func(what string) {
			GinkgoHelper()
			Eventually(lbStatus(lbc, lb.ID)).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).
				Should(Equal("ACTIVE"), "load balancer %s after %s", lb.ID, what)
		}
		active("its creation")

		lb = must(loadbalancers.Get(ctx, lbc, lb.ID).Extract())
		Expect(lb.VipAddress).NotTo(BeEmpty())
		vip, err := ports.Get(ctx, network, lb.VipPortID).Extract()
		Expect(err).NotTo(HaveOccurred(), "the VIP port %s in neutron", lb.VipPortID)
		Expect(vip.NetworkID).To(Equal(net.ID), "the VIP port is on the VIP subnet's network")
		Expect(vip.FixedIPs).To(ContainElement(ports.IP{SubnetID: sub.ID, IPAddress: lb.VipAddress}), "the VIP port holds the VIP")

		l := must(listeners.Create(ctx, lbc, listeners.CreateOpts{Name: name("listener"), LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP, ProtocolPort: 6443}).Extract())
		active("the listener's creation")
		p := must(pools.Create(ctx, lbc, pools.CreateOpts{Name: name("pool"), ListenerID: l.ID, Protocol: pools.ProtocolTCP, LBMethod: pools.LBMethodRoundRobin}).Extract())
		active("the pool's creation")
		must(pools.CreateMember(ctx, lbc, p.ID, pools.CreateMemberOpts{Name: name("member"), Address: "10.97.0.50", ProtocolPort: 6443, SubnetID: sub.ID}).Extract())
		active("the member's creation")

		fip := must(floatingips.Create(ctx, network, floatingips.CreateOpts{FloatingNetworkID: pub.ID, PortID: lb.VipPortID, Description: name("fip")}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "floating IP", func(ctx context.Context) error { return floatingips.Delete(ctx, network, fip.ID).ExtractErr() })
		})
		Expect(fip.FixedIP).To(Equal(lb.VipAddress), "the floating IP maps to the VIP")
		Eventually(func(ctx context.Context) (string, error) {
			got, err := floatingips.Get(ctx, network, fip.ID).Extract()
			if err != nil {
				return "", err
			}
			return got.Status, nil
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Equal("ACTIVE"), "floating IP status (set by the L3 agent)")

		deleteLB(ctx)
		_, err = ports.Get(ctx, network, lb.VipPortID).Extract()
		Expect(err).To(Satisfy(isNotFound), "the VIP port %s went with the load balancer", lb.VipPortID)
		got := must(floatingips.Get(ctx, network, fip.ID).Extract())
		Expect(got.PortID).To(BeEmpty(), "the floating IP is free again")
		deleted(ctx, "floating IP", func(ctx context.Context) error { return floatingips.Delete(ctx, network, fip.ID).ExtractErr() })
		deleted(ctx, "router interface", func(ctx context.Context) error {
			_, err := routers.RemoveInterface(ctx, network, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract()
			return err
		})
		deleted(ctx, "router", func(ctx context.Context) error { return routers.Delete(ctx, network, r.ID).ExtractErr() })
		deleted(ctx, "network", func(ctx context.Context) error { return networks.Delete(ctx, network, net.ID).ExtractErr() })

		// The amphora's server, its ports and the VIP's security group are
		// octavia's, in the service project: all of them go too.
		Eventually(func(ctx context.Context) ([]devstack.Resource, error) {
			now, err := env.Snapshot(ctx)
			if err != nil {
				return nil, err
			}
			return devstack.Diff(before, now), nil
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(2*time.Second).Should(BeEmpty(), "nothing left behind")
	}, SpecTimeout(12*time.Minute))
})
