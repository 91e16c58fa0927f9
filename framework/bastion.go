package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/tunnel"
)

// OpenStackClusterGVK is CAPO's OpenStackCluster in its v1beta1 API, the one
// CAPO v0.14 serves; BastionAddress looks the cluster up in each of
// OpenStackClusterVersions instead.
var OpenStackClusterGVK = schema.GroupVersionKind{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta1", Kind: "OpenStackCluster"}

// OpenStackClusterVersions are the API versions of CAPO's OpenStackCluster
// that BastionAddress tries, newest first: v1beta2 (CAPO's current API),
// then v1beta1 (CAPO v0.10 to v0.14). A version the management cluster does
// not serve is skipped. Both keep the bastion's address at
// status.bastion.floatingIP.
var OpenStackClusterVersions = []string{"v1beta2", "v1beta1"}

// DefaultBastionTimeout bounds BastionDialer when it is given no intervals.
const DefaultBastionTimeout = 5 * time.Minute

// BastionDialerInput is the input of BastionDialer. The bastion's address
// comes from Address, else from OpenStackCluster, else from the
// OpenStackCluster called ClusterName in Namespace read through Reader.
type BastionDialerInput struct {
	// Tunnel carries the connection to the bastion's floating IP (the
	// floating range is one of its routes). Required.
	Tunnel *tunnel.Tunnel
	// Address is the bastion's address, host or host:port (port 22 by default).
	Address string
	// OpenStackCluster is a CAPO OpenStackCluster (any API version);
	// its status.bastion.floatingIP is the address.
	OpenStackCluster *unstructured.Unstructured
	// Reader reads the OpenStackCluster called ClusterName in Namespace
	// (a controller-runtime client of the management cluster), in the
	// first of OpenStackClusterVersions the cluster serves (or APIVersion).
	Reader client.Reader
	// APIVersion, when set, is the only version of the OpenStackCluster
	// Reader reads (e.g. "v1beta1"); default: OpenStackClusterVersions.
	APIVersion string
	// Namespace and ClusterName name the OpenStackCluster to read.
	Namespace, ClusterName string
	// User is the SSH login on the bastion (CAPO's images: "cirros" or "ubuntu"). Required.
	User string
	// Signer authenticates the user (the key pair named by
	// OPENSTACK_SSH_KEY_NAME). Required.
	Signer ssh.Signer
	// HostKeyCallback checks the bastion's host key, e.g.
	// tunnel.PinnedHostKey(key). Bastions booted from public images have
	// keys nobody knows in advance; only then pass ssh.InsecureIgnoreHostKey().
	// Required.
	HostKeyCallback ssh.HostKeyCallback
	// HostKeyAlgorithms asks the bastion for the pinned key's type, e.g.
	// tunnel.HostKeyAlgorithms(key): a host has several keys and otherwise
	// presents the one the client prefers. Default: x/crypto/ssh's order.
	HostKeyAlgorithms []string
}

// Bastion is an SSH connection to a cluster's bastion, through the tunnel.
type Bastion struct {
	// Client is the SSH client; it runs commands on the bastion and dials
	// addresses as seen from it.
	Client *tunnel.Client
	// Address is the bastion's host:port.
	Address   string
	signer    ssh.Signer
	hostKey   ssh.HostKeyCallback
	hostAlgos []string
}

// BastionDialer connects to a cluster's bastion through the tunnel, trying
// again until it answers (its sshd may still be starting) within intervals,
// polling as they say (use e2eConfig.GetIntervals(spec, "wait-bastion-ssh");
// none: DefaultBastionTimeout); the error then says what it tried and the
// last failure. It returns errors instead of failing the spec, so log
// collectors can use it too.
func BastionDialer(ctx context.Context, input BastionDialerInput, intervals ...interface{}) (*Bastion, error) {
	if input.Tunnel == nil {
		return nil, errors.New("bastion dialer: Tunnel is nil: pass DevStack.Tunnel")
	}
	if input.User == "" {
		return nil, errors.New("bastion dialer: User is empty: set the bastion image's login, e.g. \"cirros\"")
	}
	if input.Signer == nil {
		return nil, errors.New("bastion dialer: Signer is nil: pass the private key of the cluster's SSH key pair (ssh.ParsePrivateKey)")
	}
	if input.HostKeyCallback == nil {
		return nil, errors.New("bastion dialer: HostKeyCallback is nil: pin the key with tunnel.PinnedHostKey, or pass ssh.InsecureIgnoreHostKey() explicitly")
	}
	iv := devstack.Intervals{Timeout: DefaultBastionTimeout}
	if len(intervals) > 0 {
		var err error
		if iv, err = ParseIntervals(intervals...); err != nil {
			return nil, fmt.Errorf("bastion dialer: intervals: %w", err)
		}
	}
	addr, err := BastionAddress(ctx, input)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User: input.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(input.Signer)},
		HostKeyCallback: input.HostKeyCallback, HostKeyAlgorithms: input.HostKeyAlgorithms, Timeout: 30 * time.Second,
	}
	var b *Bastion
	err = devstack.Poll(ctx, logr.Discard(), fmt.Sprintf("an SSH connection to %s@%s", input.User, addr), iv, func(ctx context.Context) (string, bool, error) {
		c, err := input.Tunnel.Jump(ctx, addr, cfg)
		if err != nil {
			return "", false, err
		}
		b = &Bastion{Client: c, Address: addr, signer: input.Signer, hostKey: input.HostKeyCallback, hostAlgos: input.HostKeyAlgorithms}
		return "connected", true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("bastion dialer: %w", err)
	}
	return b, nil
}

// BastionAddress returns the host:port BastionDialer would dial: input.Address,
// else the OpenStackCluster's status.bastion.floatingIP (read through
// input.Reader when the object is not given, in the first of
// OpenStackClusterVersions the management cluster serves, or
// input.APIVersion), with port 22 by default.
func BastionAddress(ctx context.Context, input BastionDialerInput) (string, error) {
	host := input.Address
	if host == "" {
		obj := input.OpenStackCluster
		if obj == nil {
			if input.Reader == nil || input.ClusterName == "" {
				return "", errors.New("bastion dialer: no address: set Address, OpenStackCluster, or Reader with Namespace and ClusterName")
			}
			var err error
			if obj, err = readOpenStackCluster(ctx, input); err != nil {
				return "", err
			}
		}
		fip, found, err := unstructured.NestedString(obj.Object, "status", "bastion", "floatingIP")
		if err != nil {
			return "", fmt.Errorf("bastion dialer: OpenStackCluster %s/%s: status.bastion.floatingIP: %w", obj.GetNamespace(), obj.GetName(), err)
		}
		if !found || fip == "" {
			return "", fmt.Errorf("bastion dialer: OpenStackCluster %s/%s (%s) has no status.bastion.floatingIP yet: enable the bastion (spec.bastion.enabled) and wait for it", obj.GetNamespace(), obj.GetName(), obj.GetAPIVersion())
		}
		host = fip
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host, nil
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("bastion dialer: address %q is neither an IP address nor host:port", host)
	}
	return net.JoinHostPort(host, "22"), nil
}

// readOpenStackCluster reads the OpenStackCluster input names in the first
// API version the management cluster serves.
func readOpenStackCluster(ctx context.Context, input BastionDialerInput) (*unstructured.Unstructured, error) {
	versions := OpenStackClusterVersions
	if input.APIVersion != "" {
		versions = []string{input.APIVersion}
	}
	key := client.ObjectKey{Namespace: input.Namespace, Name: input.ClusterName}
	for _, v := range versions {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(OpenStackClusterGVK.GroupKind().WithVersion(v))
		err := input.Reader.Get(ctx, key, obj)
		if err == nil {
			return obj, nil
		}
		if !meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("bastion dialer: reading OpenStackCluster %s/%s (%s/%s): %w", input.Namespace, input.ClusterName, OpenStackClusterGVK.Group, v, err)
		}
	}
	return nil, fmt.Errorf("bastion dialer: reading OpenStackCluster %s/%s: the management cluster serves none of %s/%s: install CAPO's CRDs, or set APIVersion",
		input.Namespace, input.ClusterName, OpenStackClusterGVK.Group, strings.Join(versions, ", "))
}

// Run runs a command on the bastion itself.
func (b *Bastion) Run(ctx context.Context, cmd string) (tunnel.RunResult, error) {
	return b.Client.Run(ctx, cmd)
}

// Close closes the connection to the bastion.
func (b *Bastion) Close() error { return b.Client.Close() }

// RunOnNodeInput is the input of RunOnNode.
type RunOnNodeInput struct {
	// Bastion is the connection to jump from. Required.
	Bastion *Bastion
	// Address is the node's address as the bastion sees it (its fixed IP),
	// host or host:port. Required.
	Address string
	// User is the login on the node (default "ubuntu", CAPO's SSH_USER_MACHINE
	// default); pass e2eConfig.MustGetVariable("SSH_USER_MACHINE") to follow
	// the e2e configuration.
	User string
	// Signer authenticates on the node (default: the bastion's signer).
	Signer ssh.Signer
	// HostKeyCallback checks the node's key (default: the bastion's callback).
	HostKeyCallback ssh.HostKeyCallback
	// HostKeyAlgorithms asks the node for the pinned key's type (see
	// BastionDialerInput.HostKeyAlgorithms). Default: the bastion's, when
	// HostKeyCallback is the bastion's too.
	HostKeyAlgorithms []string
	// Command is the shell command to run. Required.
	Command string
}

// RunOnNode connects from the bastion to a node and runs a command there, as
// a log collector does (journalctl, cloud-init logs, crictl). It returns the
// output and the exit status; a non-zero status is not an error.
func RunOnNode(ctx context.Context, input RunOnNodeInput) (tunnel.RunResult, error) {
	if input.Bastion == nil {
		return tunnel.RunResult{}, errors.New("run on node: Bastion is nil: connect with BastionDialer first")
	}
	if input.Command == "" {
		return tunnel.RunResult{}, errors.New("run on node: Command is empty")
	}
	addr := input.Address
	if addr == "" {
		return tunnel.RunResult{}, errors.New("run on node: Address is empty: pass the node's fixed IP")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	user, signer, hk := input.User, input.Signer, input.HostKeyCallback
	if user == "" {
		user = "ubuntu"
	}
	if signer == nil {
		signer = input.Bastion.signer
	}
	algos := input.HostKeyAlgorithms
	if hk == nil {
		hk = input.Bastion.hostKey
		if algos == nil {
			algos = input.Bastion.hostAlgos
		}
	}
	node, err := input.Bastion.Client.Jump(ctx, addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, HostKeyAlgorithms: algos, Timeout: 30 * time.Second,
	})
	if err != nil {
		return tunnel.RunResult{}, fmt.Errorf("run on node %s: %w", addr, err)
	}
	defer node.Close()
	res, err := node.Run(ctx, input.Command)
	if err != nil {
		return res, fmt.Errorf("run on node %s: %w", addr, err)
	}
	return res, nil
}
