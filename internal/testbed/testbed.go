//go:build linux

// Package testbed builds the SSH topology that the tunnel is tested and
// measured on, and remote log collection is tested on: a client side (the
// root namespace, or a namespace of its own), a controller namespace running
// OpenSSH's sshd on a random /30 inside 198.18.0.0/16, and behind it a host
// on 10.0.3.0/24 and one on 172.24.4.0/24, each running sshd and a small
// HTTP server. The client side has no route to the hosts behind the
// controller unless RouteBehind is set. Close removes every namespace,
// process and file it made.
package testbed

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/internal/netns"
)

// Fixed addresses behind the controller.
const (
	PrivateHost  = "10.0.3.10"
	FloatingHost = "172.24.4.10"
	// PrivateName and FloatingName resolve only inside the controller
	// namespace (its /etc/hosts), for remote name resolution tests.
	PrivateName  = "private.test"
	FloatingName = "floating.test"
	// HTTPPort is where every HTTP helper listens.
	HTTPPort = 8080
	// CountPort is where every HTTP helper also answers a connection, once
	// the client has half-closed it, with the number of bytes it sent.
	CountPort = 8081
	// StallPort is where every HTTP helper also accepts connections and
	// neither reads from them nor writes to them; it closes each after a
	// minute. Deadlines are tested against it.
	StallPort = 8082
	// User is the SSH login on every sshd.
	User = "root"
)

// Options shape the bed.
type Options struct {
	// Log receives the output of sshd and the helpers.
	Log io.Writer
	// ClientNamespace puts the client side into a namespace of its own
	// instead of the root namespace.
	ClientNamespace bool
	// RouteBehind gives the client namespace routes to the hosts behind the
	// controller (needs ClientNamespace; the root namespace is never
	// given routes).
	RouteBehind bool
}

// SSHD is one OpenSSH server.
type SSHD struct {
	// Name says which host it serves ("controller", "private", "floating").
	Name string
	// Addr is host:port.
	Addr string
	// HostKey is the public host key.
	HostKey ssh.PublicKey
	// HostKeyLine is HostKey as an authorized_keys line, newline included.
	HostKeyLine []byte

	ns     *netns.Namespace
	config string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Bed is a running topology.
type Bed struct {
	// Client is the client side's namespace; nil is the root namespace.
	Client *netns.Namespace
	// Controller, Private and Floating are the namespaces behind it.
	Controller, Private, Floating *netns.Namespace
	// ClientIP and ControllerIP are the two ends of the /30.
	ClientIP, ControllerIP string
	// ControllerSSHD, PrivateSSHD and FloatingSSHD are the servers.
	ControllerSSHD, PrivateSSHD, FloatingSSHD *SSHD
	// UserKey is the private key authorised on every sshd, PEM-encoded.
	UserKey []byte
	// UserSigner is UserKey as a signer for golang.org/x/crypto/ssh.
	UserSigner ssh.Signer
	// UserKeyFile and KnownHostsFile are files for ssh(1).
	UserKeyFile, KnownHostsFile string
	// Dir holds configs and keys; removed by Close.
	Dir string

	log   io.Writer
	topo  *netns.Topology
	mu    sync.Mutex
	procs []proc
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start builds the bed. On failure everything already made is removed.
func Start(ctx context.Context, opts Options) (b *Bed, err error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.RouteBehind && !opts.ClientNamespace {
		return nil, errors.New("testbed: Options.RouteBehind needs Options.ClientNamespace: the root namespace is never given routes")
	}
	b = &Bed{log: opts.Log, topo: netns.New()}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close(context.WithoutCancel(ctx)))
		}
	}()
	if b.Dir, err = os.MkdirTemp("", "stackgate-tunnel-"); err != nil {
		return b, err
	}
	if err := b.makeUserKey(); err != nil {
		return b, err
	}
	if err := b.network(ctx, opts); err != nil {
		return b, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return b, err
	}
	b.ControllerSSHD = &SSHD{Name: "controller", Addr: net.JoinHostPort(b.ControllerIP, "22"), ns: b.Controller}
	b.PrivateSSHD = &SSHD{Name: "private", Addr: net.JoinHostPort(PrivateHost, "22"), ns: b.Private}
	b.FloatingSSHD = &SSHD{Name: "floating", Addr: net.JoinHostPort(FloatingHost, "22"), ns: b.Floating}
	var known strings.Builder
	for _, s := range []*SSHD{b.ControllerSSHD, b.PrivateSSHD, b.FloatingSSHD} {
		if err := b.configureSSHD(s); err != nil {
			return b, err
		}
		host, _, _ := net.SplitHostPort(s.Addr)
		fmt.Fprintf(&known, "%s %s", host, s.HostKeyLine)
		if err := b.StartSSHD(ctx, s); err != nil {
			return b, err
		}
	}
	b.KnownHostsFile = filepath.Join(b.Dir, "known_hosts")
	if err := os.WriteFile(b.KnownHostsFile, []byte(known.String()), 0o600); err != nil {
		return b, err
	}
	for _, h := range []struct {
		ns   *netns.Namespace
		addr string
	}{{b.Controller, b.ControllerIP}, {b.Private, PrivateHost}, {b.Floating, FloatingHost}} {
		if err := b.startHTTP(ctx, h.ns, net.JoinHostPort(h.addr, strconv.Itoa(HTTPPort))); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (b *Bed) makeUserKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the user key: %w", err)
	}
	b.UserKeyFile = filepath.Join(b.Dir, "id_ed25519")
	if b.UserKey, err = writePrivateKey(b.UserKeyFile, priv); err != nil {
		return fmt.Errorf("writing the user key: %w", err)
	}
	if b.UserSigner, err = ssh.NewSignerFromKey(priv); err != nil {
		return fmt.Errorf("making a signer of the user key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(b.UserSigner.PublicKey()), 0o600); err != nil {
		return fmt.Errorf("authorising the user key: %w", err)
	}
	return nil
}

// network creates the namespaces and links.
func (b *Bed) network(ctx context.Context, opts Options) error {
	var err error
	if opts.ClientNamespace {
		if b.Client, err = b.topo.AddNamespace(ctx, netns.UniqueName("sgcli")); err != nil {
			return err
		}
	}
	if b.Controller, err = b.topo.AddNamespace(ctx, netns.UniqueName("sgctl")); err != nil {
		return err
	}
	if b.Private, err = b.topo.AddNamespace(ctx, netns.UniqueName("sgprv")); err != nil {
		return err
	}
	if b.Floating, err = b.topo.AddNamespace(ctx, netns.UniqueName("sgfip")); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1 localhost\n%s %s\n%s %s\n", PrivateHost, PrivateName, FloatingHost, FloatingName)
	if err := b.topo.AddEtcFile(b.Controller, "hosts", []byte(hosts)); err != nil {
		return err
	}
	if b.ClientIP, b.ControllerIP, err = freeSlash30(ctx); err != nil {
		return err
	}
	// Both ends of a veth pair are created in the root namespace before
	// they move, so every name must be unique on the host: derive them
	// from the controller namespace's unique name.
	suffix := strings.TrimPrefix(b.Controller.Name, "sgctl-")
	if err := b.topo.AddVeth(ctx,
		netns.Link{Name: "sc-" + suffix, Namespace: b.Client, Address: b.ClientIP + "/30"},
		netns.Link{Name: "cs-" + suffix, Namespace: b.Controller, Address: b.ControllerIP + "/30"}); err != nil {
		return err
	}
	if err := b.topo.AddVeth(ctx,
		netns.Link{Name: "cp-" + suffix, Namespace: b.Controller, Address: "10.0.3.1/24"},
		netns.Link{Name: "pc-" + suffix, Namespace: b.Private, Address: PrivateHost + "/24"}); err != nil {
		return err
	}
	if err := b.topo.AddVeth(ctx,
		netns.Link{Name: "cf-" + suffix, Namespace: b.Controller, Address: "172.24.4.1/24"},
		netns.Link{Name: "fc-" + suffix, Namespace: b.Floating, Address: FloatingHost + "/24"}); err != nil {
		return err
	}
	// The controller routes between its sides (bastion to private host);
	// replies from behind it go back through it.
	if _, err := b.Controller.Run(ctx, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		return err
	}
	if err := b.Private.IP(ctx, "route", "add", "default", "via", "10.0.3.1"); err != nil {
		return err
	}
	if err := b.Floating.IP(ctx, "route", "add", "default", "via", "172.24.4.1"); err != nil {
		return err
	}
	if opts.RouteBehind {
		if err := b.Client.IP(ctx, "route", "add", "default", "via", b.ControllerIP); err != nil {
			return err
		}
	}
	return nil
}

// freeSlash30 picks a random /30 in 198.18.0.0/16 that no address of the
// root namespace is in and returns its first two host addresses.
func freeSlash30(ctx context.Context) (first, second string, err error) {
	for range 20 {
		n, err := rand.Int(rand.Reader, big.NewInt(1<<14))
		if err != nil {
			return "", "", err
		}
		i := int(n.Int64())
		third, fourth := i>>6, (i&63)<<2
		out, err := exec.CommandContext(ctx, "ip", "-4", "-o", "addr", "show", "to", fmt.Sprintf("198.18.%d.%d/30", third, fourth)).Output()
		if err != nil {
			return "", "", fmt.Errorf("listing addresses: %w", err)
		}
		if strings.TrimSpace(string(out)) == "" {
			return fmt.Sprintf("198.18.%d.%d", third, fourth+1), fmt.Sprintf("198.18.%d.%d", third, fourth+2), nil
		}
	}
	return "", "", errors.New("no free /30 in 198.18.0.0/16 after 20 tries")
}
