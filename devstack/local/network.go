//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/internal/netns"
)

// createNetwork builds the two namespaces, the private bridge joining them,
// the public veth pair to the root namespace and the interfaces neutron's
// linuxbridge agents use for the flat network "public".
func (h *Host) createNetwork(ctx context.Context, cfg devstack.Config) (err error) {
	n := h.names()
	if err := addressFree(ctx, n.publicRoot, n.publicCtl); err != nil {
		return err
	}
	topo := netns.New()
	defer func() {
		if err != nil {
			_ = topo.Cleanup(context.WithoutCancel(ctx))
		}
	}()
	ctl, err := topo.AddNamespace(ctx, n.controller)
	if err != nil {
		return err
	}
	wk, err := topo.AddNamespace(ctx, n.worker)
	if err != nil {
		return err
	}
	bits := cfg.PrivateNetworkCIDR.Bits()
	if err := topo.AddBridge(ctx, netns.Link{Name: n.bridge, Namespace: ctl, Address: fmt.Sprintf("%s/%d", cfg.ControllerIP, bits)}); err != nil {
		return kernelHint(err, "bridge (CONFIG_BRIDGE)")
	}
	if err := topo.AddVeth(ctx,
		netns.Link{Name: n.workerLink, Namespace: wk, Address: fmt.Sprintf("%s/%d", cfg.WorkerIP, bits)},
		netns.Link{Name: n.brPort, Namespace: ctl, Master: n.bridge}); err != nil {
		return kernelHint(err, "veth (CONFIG_VETH)")
	}
	if err := topo.AddVeth(ctx,
		netns.Link{Name: n.rootLink, Address: fmt.Sprintf("%s/%d", n.publicRoot, n.public.Bits())},
		netns.Link{Name: n.ctlLink, Namespace: ctl, Address: fmt.Sprintf("%s/%d", n.publicCtl, n.public.Bits())}); err != nil {
		return err
	}
	gw := gateway(cfg.FloatingRange)
	if err := topo.AddVeth(ctx,
		netns.Link{Name: n.extCtl, Namespace: ctl},
		netns.Link{Name: n.extGw, Namespace: ctl, Address: fmt.Sprintf("%s/%d", gw, cfg.FloatingRange.Bits())}); err != nil {
		return err
	}
	if err := topo.AddVeth(ctx, netns.Link{Name: n.extWorker, Namespace: wk}, netns.Link{Name: n.extWkPr, Namespace: wk}); err != nil {
		return err
	}
	// The controller routes for the floating range (it holds the gateway);
	// the worker reaches the floating range through the controller.
	if err := wk.IP(ctx, "route", "add", cfg.FloatingRange.Masked().String(), "via", cfg.ControllerIP.String()); err != nil {
		return err
	}
	for _, ns := range []*netns.Namespace{ctl, wk} {
		if _, err := ns.Run(ctx, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
			return err
		}
	}
	return nil
}

func kernelHint(err error, feature string) error {
	return fmt.Errorf("%w (does the kernel have %s?)", err, feature)
}

// gateway is the first host address of p, the floating range's gateway.
func gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// addressFree fails if one of the addresses is already assigned in the root namespace.
func addressFree(ctx context.Context, addrs ...netip.Addr) error {
	out, err := exec.CommandContext(ctx, "ip", "-o", "addr", "show").Output()
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if p.Addr() == a {
					return fmt.Errorf("address %s is already in use on %s in the root namespace; remove it or pick another instance name", a, strings.TrimSuffix(f[1], ":"))
				}
			}
		}
	}
	return nil
}

var neutronNS = regexp.MustCompile(`^(qrouter|qdhcp)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// neutronNamespaces lists the qrouter-/qdhcp- namespaces made by this
// instance's agents: their interfaces' peers live in the controller
// namespace, or their ids are in this instance's neutron state.
func (h *Host) neutronNamespaces(ctx context.Context) []string {
	n := h.names()
	entries, _ := os.ReadDir("/run/netns")
	known := map[string]bool{}
	for _, f := range h.readList(fileNeutronNamespaces) {
		known[f] = true
	}
	var ours []string
	for _, e := range entries {
		name := e.Name()
		if !neutronNS.MatchString(name) {
			continue
		}
		out, _ := exec.CommandContext(ctx, "ip", "-n", name, "-o", "link", "show").Output()
		_, dhcpErr := os.Stat(h.path("neutron", "dhcp", strings.TrimPrefix(name, "qdhcp-")))
		if known[name] || linkedTo(string(out), n.controller) || linkedTo(string(out), n.worker) || (strings.HasPrefix(name, "qdhcp-") && dhcpErr == nil) {
			ours = append(ours, name)
		}
	}
	return ours
}

// rememberNeutronNamespaces records the neutron namespaces of this instance,
// so a later teardown finds them even when the controller namespace is
// already gone or an agent made one after this call: those that exist now,
// and the qdhcp-/qrouter- names of every network and router in the
// instance's database (when it runs), whether their namespace exists yet or
// not.
//
// With offline (Down of a dead environment), when MariaDB is not running but
// namespaces that cannot be attributed otherwise exist (an agent made them
// and died before plugging an interface), the database is read by a MariaDB
// started for that moment without networking.
func (h *Host) rememberNeutronNamespaces(ctx context.Context, offline bool) {
	seen := map[string]bool{}
	var all []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			all = append(all, n)
		}
	}
	for _, n := range h.readList(fileNeutronNamespaces) {
		if netns.Exists(n) {
			add(n)
		}
	}
	for _, n := range h.neutronNamespaces(ctx) {
		add(n)
	}
	fromDB := h.neutronNamespacesFromDB(ctx)
	if _, running := h.pidOf("mariadb"); !running && offline && h.unattributedNeutronNamespaces(ctx, seen) {
		fromDB = h.neutronNamespacesOffline(ctx)
	}
	for _, n := range fromDB {
		add(n)
	}
	_ = os.WriteFile(h.path(fileNeutronNamespaces), []byte(strings.Join(all, "\n")), 0o600)
}

// unattributedNeutronNamespaces reports whether a qrouter-/qdhcp- namespace
// exists that is not in known and has no interface linked to any other
// namespace, or cannot be entered (so it could belong to this instance).
func (h *Host) unattributedNeutronNamespaces(ctx context.Context, known map[string]bool) bool {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		name := e.Name()
		if !neutronNS.MatchString(name) || known[name] {
			continue
		}
		// A namespace whose creation was cut short is a bare file that
		// cannot be entered; it has no links either.
		out, err := exec.CommandContext(ctx, "ip", "-n", name, "-o", "link", "show").Output()
		if err != nil || !strings.Contains(string(out), "link-netns") {
			return true
		}
	}
	return false
}

// neutronNamespacesOffline starts the instance's MariaDB without networking
// (socket only, in the root namespace), reads the network and router ids and
// stops it again. It returns nothing when there is no neutron database or
// MariaDB does not answer within 60 seconds.
func (h *Host) neutronNamespacesOffline(ctx context.Context) []string {
	if _, err := os.Stat(h.path("mysql", "neutron")); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := h.start(service{name: "mariadb-offline", args: []string{"/usr/sbin/mariadbd", "--defaults-file=" + h.etc("my.cnf"), "--skip-networking"}}); err != nil {
		h.log.Info("could not start MariaDB to list neutron namespaces", "instance", h.instance, "error", err.Error())
		return nil
	}
	defer func() {
		if err := h.stopOne(ctx, "mariadb-offline", 30*time.Second); err != nil {
			h.log.Info("could not stop the MariaDB started to list neutron namespaces", "instance", h.instance, "error", err.Error())
		}
	}()
	if err := poll(ctx, "mariadb (offline)", 60*time.Second, func() error { return h.checkAlive("mariadb-offline") }, func(ctx context.Context) (bool, string) {
		out, err := h.run(ctx, "mariadb-ping", "", nil, "", "mysqladmin", "--defaults-file="+h.etc("my.cnf"), "ping")
		return err == nil, strings.TrimSpace(out)
	}); err != nil {
		h.log.Info("MariaDB did not answer; neutron namespaces not listed from the database", "instance", h.instance, "error", err.Error())
		return nil
	}
	return h.queryNeutronNamespaces(ctx)
}

// neutronNamespacesFromDB returns qdhcp-<network id> and qrouter-<router id>
// for every network and router in the instance's neutron database, or
// nothing when its MariaDB does not run.
func (h *Host) neutronNamespacesFromDB(ctx context.Context) []string {
	if _, ok := h.pidOf("mariadb"); !ok {
		return nil
	}
	return h.queryNeutronNamespaces(ctx)
}

func (h *Host) queryNeutronNamespaces(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mysql", "--defaults-file="+h.etc("my.cnf"), "-N", "-B", "-e",
		"SELECT CONCAT('qdhcp-', id) FROM networks; SELECT CONCAT('qrouter-', id) FROM routers;", "neutron").Output()
	if err != nil {
		h.log.Info("could not list neutron networks and routers", "instance", h.instance, "error", err.Error())
		return nil
	}
	var names []string
	for _, f := range strings.Fields(string(out)) {
		if neutronNS.MatchString(f) {
			names = append(names, f)
		}
	}
	return names
}

func (h *Host) readList(name string) []string {
	b, err := os.ReadFile(h.path(name))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// errNotMade marks a namespace of an instance's name that it did not make.
var errNotMade = errors.New("was not made by it")

// deleteNetwork removes the instance's namespaces (and so every process
// still running in them) and its root link. The node namespaces carry their
// names, not this instance's proof of ownership, so each must hold the link
// the instance put there (the controller's end of the public pair, the
// worker's end of its private pair): a namespace of the same name without
// it was made by someone else, and nothing is removed.
func (h *Host) deleteNetwork(ctx context.Context) error {
	n := h.names()
	var foreign []string
	for _, node := range []struct{ ns, link string }{{n.controller, n.ctlLink}, {n.worker, n.workerLink}} {
		if netns.Exists(node.ns) && !netns.LinkExists(ctx, &netns.Namespace{Name: node.ns}, node.link) {
			foreign = append(foreign, fmt.Sprintf("%s (no link %s)", node.ns, node.link))
		}
	}
	if len(foreign) > 0 {
		return fmt.Errorf("local host: instance %q: network namespace %s %w: left alone with everything running in it; if it is a leftover, remove it with `ip netns delete <name>`",
			h.instance, strings.Join(foreign, ", "), errNotMade)
	}
	var errs []error
	// The root end of the public pair goes first: deleting it is synchronous
	// and takes the controller's end along, whereas a deleted namespace's
	// links disappear later, when the kernel gets to it.
	if err := netns.DeleteLink(ctx, nil, n.rootLink); err != nil {
		errs = append(errs, fmt.Errorf("deleting link %s: %w", n.rootLink, err))
	}
	for _, ns := range h.neutronNamespaces(ctx) {
		errs = append(errs, netns.DeleteNamespace(ctx, ns))
	}
	for _, ns := range []string{n.worker, n.controller} {
		errs = append(errs, netns.DeleteNamespace(ctx, ns))
	}
	return errors.Join(errs...)
}

// linkedTo reports whether `ip -o link` output shows an interface whose peer
// is in namespace ns.
func linkedTo(out, ns string) bool {
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "link-netns" && strings.TrimSuffix(f[i+1], "\\") == ns {
			return true
		}
	}
	return false
}
