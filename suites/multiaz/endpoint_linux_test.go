package multiaz_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/internal/netns"
)

// controllerNamespace returns the local host's controller namespace, where
// the linuxbridge agent of the first zone's compute host runs: "controller"
// for the default instance (state directory .../local), "<name>-controller"
// for an instance called name (state directory .../local-<name>).
func controllerNamespace(stateDir string) string {
	if name, ok := strings.CutPrefix(filepath.Base(stateDir), "local-"); ok {
		return name + "-controller"
	}
	return "controller"
}

// startPortEndpoint plugs a network namespace into the port the way nova's
// VIF plugging would for a hypervisor: a veth named tap<first 11 characters
// of the port ID> in the controller namespace, added to the network's bridge
// brq<first 11 characters of the network ID> (it exists: the network has a
// router), which the linuxbridge agent then reports ACTIVE. The other end
// gets the port's MAC and fixed IP and a default route through the router,
// and OpenSSH's sshd listens there. Everything is removed by DeferCleanup.
func startPortEndpoint(ctx context.Context, in portEndpointInput) *portEndpoint {
	ctl := controllerNamespace(in.StateDir)
	Expect(netns.Exists(ctl)).To(BeTrue(), "The local host's %q namespace is missing", ctl)
	Expect(in.Port.FixedIPs).NotTo(BeEmpty(), "Port %s has no fixed IP", in.Port.ID)
	prefix, err := netip.ParsePrefix(in.Subnet.CIDR)
	Expect(err).NotTo(HaveOccurred(), "subnet CIDR %q", in.Subnet.CIDR)
	fixed := in.Port.FixedIPs[0].IPAddress

	topo := netns.New()
	DeferCleanup(func(ctx context.Context) {
		Expect(topo.Cleanup(ctx)).To(Succeed(), "Couldn't remove the endpoint of port %s", in.Port.ID)
	})
	ns, err := topo.AddNamespace(ctx, netns.UniqueName("sgbas"))
	Expect(err).NotTo(HaveOccurred())
	tap := "tap" + in.Port.ID[:11]
	bridge := "brq" + in.NetworkID[:11]
	inner := netns.UniqueName("sgv")
	Expect(topo.AddVeth(ctx,
		netns.Link{Name: tap, Namespace: &netns.Namespace{Name: ctl}, Master: bridge},
		netns.Link{Name: inner, Namespace: ns},
	)).To(Succeed(), "Couldn't plug %s into bridge %s in the controller namespace", tap, bridge)
	Expect(ns.IP(ctx, "link", "set", inner, "down")).To(Succeed())
	Expect(ns.IP(ctx, "link", "set", inner, "address", in.Port.MACAddress)).To(Succeed(), "Couldn't give %s the port's MAC %s", inner, in.Port.MACAddress)
	Expect(ns.IP(ctx, "addr", "add", fmt.Sprintf("%s/%d", fixed, prefix.Bits()), "dev", inner)).To(Succeed())
	Expect(ns.IP(ctx, "link", "set", inner, "up")).To(Succeed())
	Expect(ns.IP(ctx, "route", "add", "default", "via", in.Subnet.GatewayIP)).To(Succeed())

	dir := GinkgoT().TempDir()
	hostKey, err := ssh.MarshalPrivateKey(in.HostKey, "")
	Expect(err).NotTo(HaveOccurred(), "Couldn't encode the endpoint's host key")
	Expect(os.WriteFile(filepath.Join(dir, "host_key"), pem.EncodeToMemory(hostKey), 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(in.AuthorizedKey), 0o600)).To(Succeed())
	conf := strings.Join([]string{
		"ListenAddress " + fixed,
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile none", "UsePAM no", "StrictModes no", "PasswordAuthentication no",
		"KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes", "LogLevel VERBOSE", "",
	}, "\n")
	Expect(os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)).To(Succeed())
	Expect(os.MkdirAll("/run/sshd", 0o755)).To(Succeed())

	cmd := ns.Command(context.WithoutCancel(ctx), "/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	Expect(cmd.Start()).To(Succeed(), "Couldn't start sshd in %s", ns.Name)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	DeferCleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return &portEndpoint{namespace: ns.Name, fixedIP: fixed}
}
