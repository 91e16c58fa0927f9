//go:build linux

package local_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsaz "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/internal/netns"
)

func computeZones(ctx context.Context, c *gophercloud.ServiceClient) []string {
	all := must(availabilityzones.ExtractAvailabilityZones(must(availabilityzones.List(c).AllPages(ctx))))
	var out []string
	for _, z := range all {
		if z.ZoneState.Available {
			out = append(out, z.ZoneName)
		}
	}
	return out
}

func volumeZones(ctx context.Context, c *gophercloud.ServiceClient) []string {
	all := must(bsaz.ExtractAvailabilityZones(must(bsaz.List(c).AllPages(ctx))))
	var out []string
	for _, z := range all {
		if z.ZoneState.Available {
			out = append(out, z.ZoneName)
		}
	}
	return out
}

func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, 404) }

var _ = Describe("the default local environment", Ordered, func() {
	var compute, adminCompute, network, volume, image *gophercloud.ServiceClient
	cfg := devstack.DefaultConfig()

	BeforeAll(needEnv, NodeTimeout(20*time.Minute))

	BeforeAll(func(ctx SpecContext) {
		demo := cloudClient(ctx, env, tun, cfg.Cloud)
		admin := cloudClient(ctx, env, tun, cfg.CloudAdmin)
		compute = must(openstack.NewComputeV2(demo, eo()))
		compute.Microversion = "2.37"
		adminCompute = must(openstack.NewComputeV2(admin, eo()))
		adminCompute.Microversion = "2.37"
		network = must(openstack.NewNetworkV2(demo, eo()))
		volume = must(openstack.NewBlockStorageV3(demo, eo()))
		image = must(openstack.NewImageV2(demo, eo()))
	})

	It("lists both availability zones for servers and volumes", func(ctx SpecContext) {
		Eventually(func(ctx context.Context) []string { return computeZones(ctx, compute) }).WithContext(ctx).
			WithTimeout(5*time.Minute).WithPolling(2*time.Second).
			Should(ContainElements(cfg.FailureDomain, cfg.FailureDomainAlt), "compute availability zones")
		Eventually(func(ctx context.Context) []string { return volumeZones(ctx, volume) }).WithContext(ctx).
			WithTimeout(5*time.Minute).WithPolling(2*time.Second).
			Should(ContainElements(cfg.FailureDomain, cfg.FailureDomainAlt), "volume availability zones")
	}, SpecTimeout(11*time.Minute))

	It("has the flavors of CAPO's CI DevStack, with their ephemeral disks", func(ctx SpecContext) {
		got := map[string]string{}
		for _, f := range must(flavors.ExtractFlavors(must(flavors.ListDetail(compute, nil).AllPages(ctx)))) {
			got[f.Name] = fmt.Sprintf("id %s ram %d vcpus %d disk %d ephemeral %d", f.ID, f.RAM, f.VCPUs, f.Disk, f.Ephemeral)
		}
		Expect(got).To(And(
			HaveKeyWithValue("m1.tiny", "id 1 ram 512 vcpus 1 disk 1 ephemeral 1"),
			HaveKeyWithValue("m1.tiny.alt", "id 10 ram 512 vcpus 1 disk 1 ephemeral 1"),
			HaveKeyWithValue("m1.small", "id 2 ram 4192 vcpus 2 disk 20 ephemeral 5"),
			HaveKeyWithValue("m1.medium", "id 3 ram 6144 vcpus 2 disk 20 ephemeral 5"),
		))
		specs := must(flavors.ListExtraSpecs(ctx, compute, "3").Extract())
		Expect(specs).To(HaveKeyWithValue("hw_rng:allowed", "True"))
	}, SpecTimeout(time.Minute))

	It("boots a server in each availability zone, on that zone's host", func(ctx SpecContext) {
		// nova lists the worker's zone before placement knows its aggregate:
		// wait until a server can be scheduled there.
		Expect(env.WaitForSecondAZ(ctx)).To(Succeed())
		net := must(networks.Create(ctx, network, networks.CreateOpts{Name: name("net")}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(networks.Delete(ctx, network, net.ID).ExtractErr()).To(Succeed()) })
		sub := must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.99.0.0/24", IPVersion: gophercloud.IPv4}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(subnets.Delete(ctx, network, sub.ID).ExtractErr()).To(Succeed()) })

		var flavorID string
		for _, f := range must(flavors.ExtractFlavors(must(flavors.ListDetail(compute, nil).AllPages(ctx)))) {
			if f.Name == "m1.tiny" {
				flavorID = f.ID
			}
		}
		Expect(flavorID).NotTo(BeEmpty(), "flavor m1.tiny")
		imgs := must(images.ExtractImages(must(images.List(image, images.ListOpts{Name: "stackgate-tiny"}).AllPages(ctx))))
		Expect(imgs).To(HaveLen(1), "image stackgate-tiny")

		for _, node := range []devstack.Node{env.Controller, env.Worker} {
			srv := must(servers.Create(ctx, compute, servers.CreateOpts{
				Name: name("server-" + node.AvailabilityZone), FlavorRef: flavorID, ImageRef: imgs[0].ID,
				AvailabilityZone: node.AvailabilityZone, Networks: []servers.Network{{UUID: net.ID}},
			}, nil).Extract())
			DeferCleanup(func(ctx SpecContext) {
				Expect(servers.Delete(ctx, compute, srv.ID).ExtractErr()).To(Succeed())
				Eventually(func(ctx context.Context) error { return servers.Get(ctx, compute, srv.ID).Err }).WithContext(ctx).
					WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Satisfy(isNotFound), "server %s deleted", srv.ID)
			})
			Eventually(func(ctx context.Context) (string, error) {
				s, err := servers.Get(ctx, compute, srv.ID).Extract()
				if err != nil {
					return "", err
				}
				if s.Status == "ERROR" {
					return s.Status, StopTrying("server went to ERROR: " + s.Fault.Message)
				}
				return s.Status, nil
			}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).
				Should(Equal("ACTIVE"), "server in %s", node.AvailabilityZone)
			got := must(servers.Get(ctx, adminCompute, srv.ID).Extract())
			Expect(got.AvailabilityZone).To(Equal(node.AvailabilityZone))
			Expect(got.Host).To(Equal(node.Name), "server in %s runs on host %s", node.AvailabilityZone, node.Name)
		}
	}, SpecTimeout(8*time.Minute))

	It("creates a volume in each availability zone", func(ctx SpecContext) {
		for _, az := range []string{cfg.FailureDomain, cfg.FailureDomainAlt} {
			v := must(volumes.Create(ctx, volume, volumes.CreateOpts{Name: name("vol-" + az), Size: 1, AvailabilityZone: az, VolumeType: cfg.VolumeTypeAlt}, nil).Extract())
			DeferCleanup(func(ctx SpecContext) {
				Expect(volumes.Delete(ctx, volume, v.ID, nil).ExtractErr()).To(Succeed())
				Eventually(func(ctx context.Context) error { return volumes.Get(ctx, volume, v.ID).Err }).WithContext(ctx).
					WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Satisfy(isNotFound), "volume %s deleted", v.ID)
			})
			Eventually(func(ctx context.Context) (string, error) {
				got, err := volumes.Get(ctx, volume, v.ID).Extract()
				if err != nil {
					return "", err
				}
				return got.Status, nil
			}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Equal("available"), "volume in %s", az)
			got := must(volumes.Get(ctx, volume, v.ID).Extract())
			Expect(got.AvailabilityZone).To(Equal(az))
			Expect(got.VolumeType).To(Equal(cfg.VolumeTypeAlt))
		}
	}, SpecTimeout(4*time.Minute))

	It("routes a floating IP of the public network through a router", func(ctx SpecContext) {
		pub := must(networks.ExtractNetworks(must(networks.List(network, networks.ListOpts{Name: "public"}).AllPages(ctx))))
		Expect(pub).To(HaveLen(1), "external network public")
		net := must(networks.Create(ctx, network, networks.CreateOpts{Name: name("fipnet")}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(networks.Delete(ctx, network, net.ID).ExtractErr()).To(Succeed()) })
		sub := must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.98.0.0/24", IPVersion: gophercloud.IPv4}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(subnets.Delete(ctx, network, sub.ID).ExtractErr()).To(Succeed()) })
		r := must(routers.Create(ctx, network, routers.CreateOpts{Name: name("router"), GatewayInfo: &routers.GatewayInfo{NetworkID: pub[0].ID}}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(routers.Delete(ctx, network, r.ID).ExtractErr()).To(Succeed()) })
		must(routers.AddInterface(ctx, network, r.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			_, err := routers.RemoveInterface(ctx, network, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract()
			Expect(err).NotTo(HaveOccurred())
		})
		port := must(ports.Create(ctx, network, ports.CreateOpts{NetworkID: net.ID, Name: name("port")}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(ports.Delete(ctx, network, port.ID).ExtractErr()).To(Succeed()) })
		fip := must(floatingips.Create(ctx, network, floatingips.CreateOpts{FloatingNetworkID: pub[0].ID, PortID: port.ID}).Extract())
		DeferCleanup(func(ctx SpecContext) { Expect(floatingips.Delete(ctx, network, fip.ID).ExtractErr()).To(Succeed()) })
		Expect(cfg.FloatingRange.Contains(netip.MustParseAddr(fip.FloatingIP))).To(BeTrue(), "floating IP %s in %s", fip.FloatingIP, cfg.FloatingRange)
		Eventually(func(ctx context.Context) (string, error) {
			got, err := floatingips.Get(ctx, network, fip.ID).Extract()
			if err != nil {
				return "", err
			}
			return got.Status, nil
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Equal("ACTIVE"), "floating IP status (set by the L3 agent)")
	}, SpecTimeout(4*time.Minute))

	It("reuses the running environment on a second Up", func(ctx SpecContext) {
		before := must(host.Status(ctx))
		again := must(host.Up(ctx, devstack.DefaultConfig()))
		Expect(again.SSH.HostKey).To(Equal(env.SSH.HostKey))
		expectSamePIDs(before, must(host.Status(ctx)))
	}, SpecTimeout(2*time.Minute))

	It("leaves the running environment alone when Up is interrupted while it looks at it", func(ctx SpecContext) {
		before := must(host.Status(ctx))
		out := gbytes.NewBuffer()
		interrupted, cancel := context.WithCancel(ctx)
		cancel()
		_, err := must(local.New(instance(local.WithOutput(out))...)).Up(interrupted, devstack.DefaultConfig())
		Expect(err).To(MatchError(context.Canceled))
		Expect(err).To(MatchError(ContainSubstring("checking the running environment")))
		Expect(string(out.Contents())).NotTo(ContainSubstring("restarting"), "an interrupted look is no sign of an unhealthy environment")
		expectSamePIDs(before, must(host.Status(ctx)))
	}, SpecTimeout(2*time.Minute))
})

// expectSamePIDs expects the main services to run in after with the pids
// they had in before.
func expectSamePIDs(before, after *local.Status) {
	GinkgoHelper()
	pid := func(s *local.Status, name string) int {
		for _, svc := range s.Services {
			if svc.Name == name && svc.Running {
				return svc.PID
			}
		}
		return 0
	}
	for _, svc := range []string{"keystone", "mariadb", "nova-api", "neutron-server", "sshd"} {
		Expect(pid(after, svc)).To(And(Not(BeZero()), Equal(pid(before, svc))), "%s kept running with the same pid", svc)
	}
}

// A separate instance, so the default environment stays up.
var _ = Describe("a separate local instance", Ordered, Label("destructive"), func() {
	BeforeAll(needEnv, NodeTimeout(20*time.Minute))

	It("tears down what it started when Up is cancelled", func(ctx SpecContext) {
		h := must(local.New(local.WithInstance("sgcancel"), local.WithOutput(GinkgoWriter)))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(Succeed()) })
		upCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		w := &cancelOn{word: "ssh", cancel: cancel}
		h2 := must(local.New(local.WithInstance("sgcancel"), local.WithOutput(w)))
		_, err := h2.Up(upCtx, devstack.DefaultConfig())
		Expect(err).To(MatchError(context.Canceled))
		Expect(w.seen()).To(BeTrue(), "Up was cancelled after its ssh stage")
		st := must(h.Status(ctx))
		Expect(st.Leftovers).To(BeEmpty())
		Expect(netns.Exists("sgcancel-controller")).To(BeFalse())
		Expect(netns.Exists("sgcancel-worker")).To(BeFalse())
	}, SpecTimeout(10*time.Minute))

	It("adds testaz2 only once the worker has started, and Down leaves nothing behind", func(ctx SpecContext) {
		h := must(local.New(local.WithInstance("sgtest"), local.WithOutput(GinkgoWriter), local.WithDeferredWorker()))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(Succeed()) })
		e, err := h.Up(ctx, devstack.DefaultConfig())
		Expect(err).NotTo(HaveOccurred())
		Expect(e.SSH.Address).NotTo(Equal(env.SSH.Address), "its own public address")
		t := openTunnel(ctx, e)
		admin := cloudClient(ctx, e, t, e.Config.CloudAdmin)
		compute := must(openstack.NewComputeV2(admin, eo()))
		volume := must(openstack.NewBlockStorageV3(admin, eo()))
		Expect(computeZones(ctx, compute)).To(ContainElement(e.Config.FailureDomain))
		Expect(computeZones(ctx, compute)).NotTo(ContainElement(e.Config.FailureDomainAlt), "no testaz2 before the worker started")
		Expect(volumeZones(ctx, volume)).NotTo(ContainElement(e.Config.FailureDomainAlt), "no volume testaz2 before the worker started")

		Expect(h.StartWorker(ctx)).To(Succeed())
		Eventually(func(ctx context.Context) []string { return computeZones(ctx, compute) }).WithContext(ctx).
			WithTimeout(5 * time.Minute).WithPolling(time.Second).Should(ContainElement(e.Config.FailureDomainAlt))
		Eventually(func(ctx context.Context) []string { return volumeZones(ctx, volume) }).WithContext(ctx).
			WithTimeout(5 * time.Minute).WithPolling(time.Second).Should(ContainElement(e.Config.FailureDomainAlt))

		st := must(h.Status(ctx))
		var pids []int
		for _, s := range st.Services {
			if s.Running && s.Name != "register-worker" {
				pids = append(pids, s.PID)
			}
		}
		Expect(pids).NotTo(BeEmpty())
		made := makeNeutronNamespaces(ctx, e, t)
		Expect(t.Close()).To(Succeed())

		Expect(h.Down(ctx)).To(Succeed())
		for _, ns := range made {
			Expect(netns.Exists(ns)).To(BeFalse(), "namespace %s removed by Down", ns)
		}
		for _, pid := range pids {
			_, err := os.Stat("/proc/" + strconv.Itoa(pid))
			Expect(errors.Is(err, os.ErrNotExist)).To(BeTrue(), "process %d is gone", pid)
		}
		Expect(netns.Exists("sgtest-controller")).To(BeFalse())
		Expect(netns.Exists("sgtest-worker")).To(BeFalse())
		out := must(exec.CommandContext(ctx, "ip", "-o", "link", "show").Output())
		Expect(string(out)).NotTo(ContainSubstring("sgp-sgtest"), "public veth removed")
		nsList := must(exec.CommandContext(ctx, "ip", "netns", "list").Output())
		Expect(string(nsList)).NotTo(ContainSubstring("sgtest-"))
		Expect(must(h.Status(ctx)).Leftovers).To(BeEmpty())
	}, SpecTimeout(20*time.Minute))

	It("refuses a second Up while one holds the lock", func(ctx SpecContext) {
		// A separate instance, so the default environment's users are not refused.
		h := must(local.New(local.WithInstance("sglock"), local.WithOutput(GinkgoWriter)))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(Succeed()) })
		upCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		started := make(chan struct{})
		w := &cancelOn{word: "network", cancel: func() { close(started) }}
		h1 := must(local.New(local.WithInstance("sglock"), local.WithOutput(w)))
		done := make(chan error, 1)
		go func() { _, err := h1.Up(upCtx, devstack.DefaultConfig()); done <- err }()
		Eventually(started).WithTimeout(2 * time.Minute).Should(BeClosed())
		_, err := h.Up(ctx, devstack.DefaultConfig())
		Expect(err).To(MatchError(ContainSubstring("is busy")))
		Expect(err).To(MatchError(ContainSubstring("pid")))
		cancel()
		Eventually(done).WithTimeout(2 * time.Minute).Should(Receive(MatchError(context.Canceled)))
	}, SpecTimeout(15*time.Minute))
})

// cancelOn calls cancel once a progress line mentions word.
type cancelOn struct {
	mu     sync.Mutex
	word   string
	cancel func()
	done   bool
}

func (c *cancelOn) Write(p []byte) (int, error) {
	GinkgoWriter.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done && slices.Contains(strings.Fields(string(p)), c.word) {
		c.done = true
		c.cancel()
	}
	return len(p), nil
}

func (c *cancelOn) seen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}
