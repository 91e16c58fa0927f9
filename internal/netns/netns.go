//go:build linux

// Package netns creates network namespaces, bridges and veth pairs with
// iproute2 and runs commands inside namespaces. Every object it creates is
// recorded so that Cleanup removes exactly those, in reverse order.
//
//	topo := netns.New()
//	defer topo.Cleanup(context.Background())
//	ctl, err := topo.AddNamespace(ctx, netns.UniqueName("ctl"))
//	err = topo.AddVeth(ctx, netns.Link{Name: "ci0", Address: "198.51.100.2/30"},
//		netns.Link{Name: "ctl0", Namespace: ctl, Address: "198.51.100.1/30"})
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Namespace is a named network namespace (/run/netns/<Name>).
type Namespace struct {
	// Name is the namespace's name as `ip netns` knows it.
	Name string
}

// Command returns a command that runs inside the namespace.
func (n *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if n == nil {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its standard output;
// the error holds the command line and its standard error.
func (n *Namespace) Run(ctx context.Context, name string, args ...string) (string, error) {
	return run(n.Command(ctx, name, args...))
}

// IP runs `ip args...` inside the namespace (in the root namespace for nil).
func (n *Namespace) IP(ctx context.Context, args ...string) error {
	if n != nil {
		args = append([]string{"-n", n.Name}, args...)
	}
	_, err := run(exec.CommandContext(ctx, "ip", args...))
	return err
}

// Exists reports whether a namespace with this name is present.
func Exists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// UniqueName returns prefix followed by a dash and six random hex digits,
// short enough to derive interface names from (at most 15 bytes).
func UniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Link is one end of a veth pair or a bridge port.
type Link struct {
	// Name is the interface name (at most 15 bytes).
	Name string
	// Namespace holds the interface; nil means the root namespace.
	Namespace *Namespace
	// Address is an optional CIDR address such as 10.0.3.15/24.
	Address string
	// Master is an optional bridge in the same namespace to enslave the link to.
	Master string
}

// Topology records the namespaces and links it creates; Cleanup removes them.
type Topology struct {
	mu   sync.Mutex
	undo []func(context.Context) error
}

// New returns an empty topology.
func New() *Topology { return &Topology{} }

func (t *Topology) record(f func(context.Context) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.undo = append(t.undo, f)
}

// AddNamespace creates a namespace with its loopback up. It fails if the name
// is taken: a namespace this topology did not create is never touched.
func (t *Topology) AddNamespace(ctx context.Context, name string) (*Namespace, error) {
	if Exists(name) {
		return nil, fmt.Errorf("network namespace %q already exists; remove it (ip netns delete %s) or choose another name", name, name)
	}
	if _, err := run(exec.CommandContext(ctx, "ip", "netns", "add", name)); err != nil {
		return nil, fmt.Errorf("creating network namespace %q: %w", name, err)
	}
	ns := &Namespace{Name: name}
	t.record(func(ctx context.Context) error { return DeleteNamespace(ctx, name) })
	if err := ns.IP(ctx, "link", "set", "lo", "up"); err != nil {
		return nil, fmt.Errorf("bringing up loopback in %q: %w", name, err)
	}
	return ns, nil
}

// DeleteNamespace kills every process left in the namespace and deletes it.
// A namespace that does not exist is not an error.
func DeleteNamespace(ctx context.Context, name string) error {
	if !Exists(name) {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if _, err := run(exec.CommandContext(ctx, "ip", "netns", "delete", name)); err != nil {
		return fmt.Errorf("deleting network namespace %q: %w", name, err)
	}
	return nil
}

// AddEtcFile writes /etc/netns/<ns>/<name>, which `ip netns exec` bind-mounts
// over /etc/<name> for processes started in ns afterwards (for example a
// hosts file only that namespace resolves with). Cleanup removes the
// namespace's /etc/netns directory.
func (t *Topology) AddEtcFile(ns *Namespace, name string, content []byte) error {
	if ns == nil {
		return errors.New("AddEtcFile: namespace is nil; /etc of the root namespace is never rewritten")
	}
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	t.record(func(context.Context) error { return os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
		return fmt.Errorf("writing %s for namespace %s: %w", name, ns.Name, err)
	}
	return nil
}

// AddBridge creates a bridge in ns (nil: root namespace), optionally with an
// address, and brings it up.
func (t *Topology) AddBridge(ctx context.Context, br Link) error {
	if err := br.Namespace.IP(ctx, "link", "add", br.Name, "type", "bridge"); err != nil {
		return fmt.Errorf("creating bridge %q: %w", br.Name, err)
	}
	t.record(func(ctx context.Context) error { return DeleteLink(ctx, br.Namespace, br.Name) })
	return configure(ctx, br)
}

// AddVeth creates a veth pair with each end in its namespace, configures
// addresses and bridge ports, and brings both ends up. The pair is made in
// one step, ends already in place: an interrupted AddVeth leaves no end in
// the root namespace that cleanup would look for elsewhere.
func (t *Topology) AddVeth(ctx context.Context, a, b Link) error {
	args := append([]string{"link", "add", a.Name}, a.Namespace.netnsArg()...)
	args = append(append(args, "type", "veth", "peer", "name", b.Name), b.Namespace.netnsArg()...)
	if err := (*Namespace)(nil).IP(ctx, args...); err != nil {
		return fmt.Errorf("creating veth pair %s/%s: %w", a.Name, b.Name, err)
	}
	// Deleting either end deletes the pair; a deleted namespace takes its ends along.
	t.record(func(ctx context.Context) error {
		return errors.Join(DeleteLink(ctx, a.Namespace, a.Name), DeleteLink(ctx, b.Namespace, b.Name))
	})
	for _, l := range []Link{a, b} {
		if err := configure(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// netnsArg is the `netns NAME` argument of `ip link add` that puts a new
// link into n (none for the root namespace).
func (n *Namespace) netnsArg() []string {
	if n == nil {
		return nil
	}
	return []string{"netns", n.Name}
}

func configure(ctx context.Context, l Link) error {
	if l.Master != "" {
		if err := l.Namespace.IP(ctx, "link", "set", l.Name, "master", l.Master); err != nil {
			return fmt.Errorf("adding %s to bridge %s: %w", l.Name, l.Master, err)
		}
	}
	if l.Address != "" {
		if err := l.Namespace.IP(ctx, "addr", "add", l.Address, "dev", l.Name); err != nil {
			return fmt.Errorf("adding %s to %s: %w", l.Address, l.Name, err)
		}
	}
	if err := l.Namespace.IP(ctx, "link", "set", l.Name, "up"); err != nil {
		return fmt.Errorf("bringing up %s: %w", l.Name, err)
	}
	return nil
}

// DeleteLink deletes the link name in ns (nil: the root namespace). A link
// that is already gone, or goes while this runs (a veth pair whose other end's
// namespace the kernel is tearing down asynchronously), is not an error.
func DeleteLink(ctx context.Context, ns *Namespace, name string) error {
	if ns != nil && !Exists(ns.Name) {
		return nil
	}
	err := ns.IP(ctx, "link", "delete", name)
	if err != nil && !LinkExists(ctx, ns, name) {
		return nil
	}
	return err
}

// LinkExists reports whether the link name is in ns (nil: the root
// namespace); a namespace that does not exist holds no link.
func LinkExists(ctx context.Context, ns *Namespace, name string) bool {
	return ns.IP(ctx, "link", "show", name) == nil
}

// Cleanup removes everything the topology created, newest first, and reports
// every failure. It may be called more than once.
func (t *Topology) Cleanup(ctx context.Context) error {
	t.mu.Lock()
	undo := t.undo
	t.undo = nil
	t.mu.Unlock()
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		errs = append(errs, undo[i](ctx))
	}
	return errors.Join(errs...)
}

func run(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
