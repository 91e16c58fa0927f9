//go:build linux

package local_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/provider"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/internal/netns"
)

// nodeNamespace is the network namespace of the instance's node.
func nodeNamespace(node string) string {
	if i := host.Instance(); i != local.DefaultInstance {
		return i + "-" + node
	}
	return node
}

type boundPort struct {
	ports.Port
	portsbinding.PortsBindingExt
}

// leaseOption returns the value of option (a dhclient lease file keyword,
// such as "fixed-address") in lease.
func leaseOption(lease, option string) string {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(option) + `\s+([^;]+);`).FindStringSubmatch(lease)
	if m == nil {
		return ""
	}
	return m[1]
}

var _ = Describe("tenant networks", func() {
	cfg := devstack.DefaultConfig()
	BeforeEach(needEnv, NodeTimeout(20*time.Minute))

	It("span both nodes: a port on the worker gets its address from the controller's DHCP agent", func(ctx SpecContext) {
		network := must(openstack.NewNetworkV2(cloudClient(ctx, env, tun, cfg.CloudAdmin), eo()))

		var net struct {
			networks.Network
			provider.NetworkProviderExt
		}
		r := networks.Create(ctx, network, networks.CreateOpts{Name: name("vxlan")})
		Expect(r.ExtractInto(&net)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(networks.Delete(ctx, network, net.ID).ExtractErr()).To(Succeed()) })
		Expect(net.NetworkType).To(Equal("vxlan"), "a tenant network's type")
		sub := must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.95.0.0/24", IPVersion: gophercloud.IPv4}).Extract())

		// The DHCP agent runs on the controller only.
		var dhcp boundPort
		Eventually(func(ctx context.Context) (string, error) {
			var all []boundPort
			pages, err := ports.List(network, ports.ListOpts{NetworkID: net.ID, DeviceOwner: "network:dhcp"}).AllPages(ctx)
			if err != nil {
				return "", err
			}
			if err := ports.ExtractPortsInto(pages, &all); err != nil || len(all) == 0 {
				return "", err
			}
			dhcp = all[0]
			return dhcp.HostID + " " + dhcp.Status, nil
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Equal("controller ACTIVE"), "the network's DHCP port")

		uuid := make([]byte, 16)
		_, _ = rand.Read(uuid)
		var port boundPort
		pr := ports.Create(ctx, network, portsbinding.CreateOptsExt{
			CreateOptsBuilder: ports.CreateOpts{NetworkID: net.ID, Name: name("worker-port"),
				DeviceOwner: "compute:" + cfg.FailureDomainAlt, DeviceID: fmt.Sprintf("%x-%x-%x-%x-%x", uuid[0:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:])},
			HostID: "worker",
		})
		Expect(pr.ExtractInto(&port)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(ports.Delete(ctx, network, port.ID).ExtractErr()).To(Succeed()) })
		Expect(port.VIFType).To(Equal("bridge"), "port %s bound on host worker by the linuxbridge mechanism driver", port.ID)

		// What nova's VIF plugging would make on the worker: a tap device,
		// which the worker's linuxbridge agent finds (it then makes the
		// network's bridge with its VXLAN interface, and reports the port
		// up), added to that bridge as os-vif adds it (the agent leaves a
		// compute port's tap to it). Its other end, in a namespace of its
		// own, has the port's MAC and asks for an address.
		topo := netns.New()
		DeferCleanup(func(ctx SpecContext) { Expect(topo.Cleanup(ctx)).To(Succeed()) })
		vm, err := topo.AddNamespace(ctx, netns.UniqueName("sgdh"))
		Expect(err).NotTo(HaveOccurred())
		nic := netns.UniqueName("sgn")
		Expect(topo.AddVeth(ctx,
			netns.Link{Name: "tap" + port.ID[:11], Namespace: &netns.Namespace{Name: nodeNamespace("worker")}},
			netns.Link{Name: nic, Namespace: vm},
		)).To(Succeed())
		Expect(vm.IP(ctx, "link", "set", nic, "down")).To(Succeed())
		Expect(vm.IP(ctx, "link", "set", nic, "address", port.MACAddress)).To(Succeed())
		Expect(vm.IP(ctx, "link", "set", nic, "up")).To(Succeed())
		Eventually(func(ctx context.Context) (string, error) {
			p, err := ports.Get(ctx, network, port.ID).Extract()
			if err != nil {
				return "", err
			}
			return p.Status, nil
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Equal("ACTIVE"), "port %s plugged by the worker's agent", port.ID)
		worker := &netns.Namespace{Name: nodeNamespace("worker")}
		bridge := "brq" + net.ID[:11]
		Expect(worker.IP(ctx, "link", "set", "tap"+port.ID[:11], "master", bridge)).To(Succeed(), "adding the tap to %s in %s", bridge, worker.Name)
		out, err := worker.Run(ctx, "ip", "-o", "link", "show", "master", bridge)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("vxlan-"+net.SegmentationID), "the worker's bridge %s carries the network's VXLAN", bridge)

		dir := GinkgoT().TempDir()
		conf, lease, pid := filepath.Join(dir, "dhclient.conf"), filepath.Join(dir, "lease"), filepath.Join(dir, "pid")
		Expect(os.WriteFile(conf, []byte("timeout 60;\n"), 0o600)).To(Succeed())
		DeferCleanup(func() {
			if b, err := os.ReadFile(pid); err == nil {
				if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 1 {
					_ = syscall.Kill(p, syscall.SIGTERM)
				}
			}
		})
		// -1: one attempt (60 s, then exit 2); -sf /bin/true: the lease is
		// recorded, not applied. Once it has one, dhclient goes to the
		// background to renew it: the cleanup above stops it.
		dctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		out, err = vm.Run(dctx, "dhclient", "-1", "-4", "-v", "-cf", conf, "-lf", lease, "-pf", pid, "-sf", "/bin/true", nic)
		Expect(err).NotTo(HaveOccurred(), "dhclient in %s: %s", vm.Name, out)
		b := must(os.ReadFile(lease))
		Expect(leaseOption(string(b), "fixed-address")).To(Equal(port.FixedIPs[0].IPAddress), "the address neutron gave port %s", port.ID)
		Expect(leaseOption(string(b), "option dhcp-server-identifier")).To(Equal(dhcp.FixedIPs[0].IPAddress), "answered by the DHCP port on the controller")
		Expect(leaseOption(string(b), "option subnet-mask")).To(Equal("255.255.255.0"), "subnet %s", sub.CIDR)
	}, SpecTimeout(8*time.Minute))
})
