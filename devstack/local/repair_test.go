//go:build linux

package local_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/internal/netns"
	"github.com/stackgate/stackgate/tunnel"
)

// makeNeutronNamespaces creates, in e, a network with a DHCP subnet and a
// router on it with its gateway on "public", waits until the agents made
// their qdhcp- and qrouter- namespaces and returns those names. The
// resources go with the environment's database at Down.
func makeNeutronNamespaces(ctx context.Context, e *devstack.Environment, t *tunnel.Tunnel) []string {
	GinkgoHelper()
	network := must(openstack.NewNetworkV2(cloudClient(ctx, e, t, e.Config.CloudAdmin), eo()))
	pub := must(networks.ExtractNetworks(must(networks.List(network, networks.ListOpts{Name: "public"}).AllPages(ctx))))
	Expect(pub).To(HaveLen(1), "external network public")
	net := must(networks.Create(ctx, network, networks.CreateOpts{Name: name("nsnet")}).Extract())
	dhcp := true
	sub := must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.97.0.0/24", IPVersion: gophercloud.IPv4, EnableDHCP: &dhcp}).Extract())
	r := must(routers.Create(ctx, network, routers.CreateOpts{Name: name("nsrouter"), GatewayInfo: &routers.GatewayInfo{NetworkID: pub[0].ID}}).Extract())
	must(routers.AddInterface(ctx, network, r.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract())
	names := []string{"qdhcp-" + net.ID, "qrouter-" + r.ID}
	for _, ns := range names {
		Eventually(netns.Exists).WithArguments(ns).WithTimeout(3*time.Minute).WithPolling(500*time.Millisecond).
			Should(BeTrue(), "namespace %s made by the agents", ns)
	}
	return names
}

// bootServer boots an m1.tiny server of the seeded image in the first zone,
// without a network, and waits until it is ACTIVE.
func bootServer(ctx context.Context, e *devstack.Environment) *servers.Server {
	GinkgoHelper()
	t := openTunnel(ctx, e)
	defer t.Close()
	compute := must(openstack.NewComputeV2(cloudClient(ctx, e, t, e.Config.Cloud), eo()))
	compute.Microversion = "2.74"
	var flavorID string
	for _, f := range must(flavors.ExtractFlavors(must(flavors.ListDetail(compute, nil).AllPages(ctx)))) {
		if f.Name == "m1.tiny" {
			flavorID = f.ID
		}
	}
	Expect(flavorID).NotTo(BeEmpty(), "flavor m1.tiny")
	img := must(openstack.NewImageV2(cloudClient(ctx, e, t, e.Config.Cloud), eo()))
	imgs := must(images.ExtractImages(must(images.List(img, images.ListOpts{Name: "stackgate-tiny"}).AllPages(ctx))))
	Expect(imgs).To(HaveLen(1), "image stackgate-tiny")
	srv := must(servers.Create(ctx, compute, servers.CreateOpts{
		Name: name("restart"), FlavorRef: flavorID, ImageRef: imgs[0].ID, AvailabilityZone: e.Config.FailureDomain, Networks: "none",
	}, nil).Extract())
	Eventually(serverStatus(compute, srv.ID)).WithContext(ctx).WithTimeout(4*time.Minute).WithPolling(time.Second).Should(Equal("ACTIVE"), "server %s", srv.ID)
	return srv
}

// killEnvironment SIGKILLs every process the environment started, as a
// machine that loses its processes would: the process groups of the pids
// recorded in the state directory, then whatever still runs in the
// instance's namespaces. It returns how many pid files it found.
func killEnvironment(ctx context.Context, h *local.Host) int {
	files, err := filepath.Glob(filepath.Join(h.StateDir(), "run", "*.pid"))
	Expect(err).NotTo(HaveOccurred())
	Expect(files).NotTo(BeEmpty(), "pid files in %s", h.StateDir())
	for _, f := range files {
		b, err := os.ReadFile(f)
		Expect(err).NotTo(HaveOccurred())
		var pid int
		var started string
		_, err = fmt.Sscan(string(b), &pid, &started)
		Expect(err).NotTo(HaveOccurred(), "pid and start time in %s", f)
		Expect(pid).To(BeNumerically(">", 1), "pid in %s", f)
		if startTimeOf(pid) != started {
			continue // exited (a one-shot step); the number may be another process's now
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL) // every service runs in its own session
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Daemons that left their session (dnsmasq, epmd, privsep helpers).
	Eventually(func(ctx context.Context) ([]int, error) {
		pids, err := h.Processes(ctx)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		return pids, err
	}).WithContext(ctx).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).
		Should(BeEmpty(), "every process of instance %s killed", h.Instance())
	return len(files)
}

// startTimeOf is field 22 of /proc/<pid>/stat, the start time the pid
// files record next to the pid, or "" when pid is not running.
func startTimeOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return f[19]
}

// expectHealthy checks through a new tunnel that keystone answers and, once
// the worker has joined again, both availability zones are back for servers
// and volumes.
func expectHealthy(ctx context.Context, e *devstack.Environment) {
	t := openTunnel(ctx, e)
	url := fmt.Sprintf("http://%s:5000/v3", e.Config.ControllerIP)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := t.HTTPClient().Do(req)
	Expect(err).NotTo(HaveOccurred(), "keystone at %s through the tunnel", url)
	resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK), "keystone at %s through the tunnel", url)

	admin := cloudClient(ctx, e, t, e.Config.CloudAdmin)
	compute := must(openstack.NewComputeV2(admin, eo()))
	volume := must(openstack.NewBlockStorageV3(admin, eo()))
	Eventually(func(ctx context.Context) []string { return computeZones(ctx, compute) }).WithContext(ctx).
		WithTimeout(5*time.Minute).WithPolling(time.Second).
		Should(ContainElements(e.Config.FailureDomain, e.Config.FailureDomainAlt), "compute availability zones after the worker re-joined")
	Eventually(func(ctx context.Context) []string { return volumeZones(ctx, volume) }).WithContext(ctx).
		WithTimeout(5*time.Minute).WithPolling(time.Second).
		Should(ContainElements(e.Config.FailureDomain, e.Config.FailureDomainAlt), "volume availability zones after the worker re-joined")
	Expect(t.Close()).To(Succeed())
}

// expectReused checks that a further Up with cfg reuses the environment:
// same host key, same keystone and MariaDB processes.
func expectReused(ctx context.Context, h *local.Host, e *devstack.Environment, cfg devstack.Config) {
	pids := func() map[string]int {
		m := map[string]int{}
		for _, s := range must(h.Status(ctx)).Services {
			if s.Running {
				m[s.Name] = s.PID
			}
		}
		return m
	}
	before := pids()
	again := must(h.Up(ctx, cfg))
	Expect(again.SSH.HostKey).To(Equal(e.SSH.HostKey), "the same controller host key")
	after := pids()
	for _, svc := range []string{"mariadb", "rabbitmq", "keystone", "nova-api", "neutron-server", "sshd"} {
		Expect(after[svc]).To(And(Not(BeZero()), Equal(before[svc])), "%s kept running with the same pid", svc)
	}
}

// A separate instance, so the default environment stays up.
var _ = Describe("repairing a local instance whose processes died", Ordered, Label("destructive"), func() {
	const instance = "sgrepair"
	var h *local.Host
	var e *devstack.Environment

	BeforeAll(needRoot)

	BeforeAll(func(ctx SpecContext) {
		h = must(local.New(local.WithInstance(instance), local.WithOutput(GinkgoWriter)))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(Succeed()) }, NodeTimeout(5*time.Minute))
		e = must(h.Up(ctx, devstack.DefaultConfig()))
	}, NodeTimeout(25*time.Minute))

	It("restarts every service from its data after all processes were killed, and the VM of a server that still exists", func(ctx SpecContext) {
		var srv *servers.Server
		if h.Virt() == local.VirtQEMU {
			srv = bootServer(ctx, e)
		}
		Expect(killEnvironment(ctx, h)).To(BeNumerically(">=", 20), "pid files of the controller's and the worker's services")
		Expect(netns.Exists(instance+"-controller")).To(BeTrue(), "the dead environment's namespaces are still there")
		Expect(must(h.Status(ctx)).KeystoneAnswers).To(BeFalse(), "keystone is dead")

		again := must(h.Up(ctx, devstack.DefaultConfig()))
		Expect(again.SSH.HostKey).To(Equal(e.SSH.HostKey), "restarted from its data: the same host key")
		Expect(again.CloudsYAML).To(Equal(e.CloudsYAML), "restarted from its data: the same credentials")
		expectHealthy(ctx, again)
		expectReused(ctx, h, again, devstack.DefaultConfig())
		e = again
		if srv == nil {
			AddReportEntry("VM restored", "not checked: servers are nova's fake driver's here ("+local.EnvVirt+"="+h.Virt()+")")
			return
		}

		By("waiting for nova-compute to boot the killed server's VM again")
		t := openTunnel(ctx, e)
		DeferCleanup(t.Close)
		admin := must(openstack.NewComputeV2(cloudClient(ctx, e, t, e.Config.CloudAdmin), eo()))
		admin.Microversion = "2.74"
		uri := "qemu+unix:///system?socket=" + filepath.Join(h.StateDir(), "libvirt", "controller", "run", "libvirt-sock")
		Eventually(func(g Gomega, ctx context.Context) {
			s, err := servers.Get(ctx, admin, srv.ID).Extract()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Status).To(Equal("ACTIVE"), "server %s", srv.ID)
			g.Expect(s.PowerState).To(Equal(servers.PowerState(servers.RUNNING)), "server %s's power state", srv.ID)
			out, err := exec.CommandContext(ctx, "virsh", "-c", uri, "domstate", s.InstanceName).CombinedOutput()
			g.Expect(err).NotTo(HaveOccurred(), "virsh domstate %s: %s", s.InstanceName, out)
			g.Expect(strings.TrimSpace(string(out))).To(Equal("running"), "domain %s under the controller's libvirtd", s.InstanceName)
		}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(servers.Delete(ctx, admin, srv.ID).ExtractErr()).To(Succeed())
		Eventually(func(ctx context.Context) error { return servers.Get(ctx, admin, srv.ID).Err }).
			WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Satisfy(isNotFound), "server %s deleted", srv.ID)
	}, NodeTimeout(25*time.Minute))

	It("rebuilds the environment when its database is gone", func(ctx SpecContext) {
		killEnvironment(ctx, h)
		Expect(os.RemoveAll(filepath.Join(h.StateDir(), "mysql"))).To(Succeed())

		again := must(h.Up(ctx, devstack.DefaultConfig()))
		Expect(again.CloudsYAML).NotTo(Equal(e.CloudsYAML), "rebuilt: new credentials")
		expectHealthy(ctx, again)
		expectReused(ctx, h, again, devstack.DefaultConfig())
		e = again
	}, NodeTimeout(30*time.Minute))

	It("rebuilds a running environment for another configuration, naming what changed", func(ctx SpecContext) {
		cfg := devstack.DefaultConfig()
		cfg.FailureDomainAlt = "testaz3"
		out := gbytes.NewBuffer()
		h := must(local.New(local.WithInstance(instance), local.WithOutput(io.MultiWriter(out, GinkgoWriter))))

		again := must(h.Up(ctx, cfg))
		Expect(string(out.Contents())).To(ContainSubstring("built for another configuration (OPENSTACK_FAILURE_DOMAIN_ALT was testaz2, now testaz3); rebuilding"))
		Expect(string(out.Contents())).NotTo(ContainSubstring("restarting"), "a changed configuration is rebuilt, not announced as a restart")
		Expect(again.Config.FailureDomainAlt).To(Equal("testaz3"))
		Expect(again.CloudsYAML).NotTo(Equal(e.CloudsYAML), "rebuilt, not restarted with the old databases: new credentials")
		expectHealthy(ctx, again) // testaz1 and testaz3
		expectReused(ctx, h, again, cfg)
		e = again
	}, NodeTimeout(30*time.Minute))

	It("takes a dead environment down completely, and Down again is a no-op", func(ctx SpecContext) {
		t := openTunnel(ctx, e)
		made := makeNeutronNamespaces(ctx, e, t)
		Expect(t.Close()).To(Succeed())
		killEnvironment(ctx, h)
		Expect(netns.Exists(instance + "-controller")).To(BeTrue())
		Expect(h.Down(ctx)).To(Succeed())
		for _, ns := range made {
			Expect(netns.Exists(ns)).To(BeFalse(), "namespace %s removed by Down", ns)
		}
		expectNothingLeft(ctx, h, instance)
		Expect(h.Down(ctx)).To(Succeed(), "Down with nothing there")
		expectNothingLeft(ctx, h, instance)
	}, NodeTimeout(10*time.Minute))
})

var _ = Describe("Down of a local instance that never ran", Label("destructive"), func() {
	BeforeEach(needRoot)

	It("succeeds and creates nothing", func(ctx SpecContext) {
		dir := filepath.Join(GinkgoT().TempDir(), "state")
		h := must(local.New(local.WithInstance("sgnone"), local.WithStateDir(dir), local.WithOutput(GinkgoWriter)))
		Expect(h.Down(ctx)).To(Succeed())
		_, err := os.Stat(dir)
		Expect(os.IsNotExist(err)).To(BeTrue(), "no state directory %s created", dir)
		expectNothingLeft(ctx, h, "sgnone")
	})
})

// expectNothingLeft checks that no namespace, link or process of the
// instance exists.
func expectNothingLeft(ctx context.Context, h *local.Host, instance string) {
	GinkgoHelper()
	nsList := must(exec.CommandContext(ctx, "ip", "netns", "list").Output())
	Expect(string(nsList)).NotTo(ContainSubstring(instance+"-"), "namespaces of %s", instance)
	links := must(exec.CommandContext(ctx, "ip", "-o", "link", "show").Output())
	Expect(strings.Fields(string(links))).NotTo(ContainElement(HavePrefix("sgp-"+instance)), "public veth of %s", instance)
	Expect(must(h.Processes(ctx))).To(BeEmpty(), "processes of %s", instance)
	Expect(must(h.Status(ctx)).Leftovers).To(BeEmpty())
}
