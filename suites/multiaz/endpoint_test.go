package multiaz_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

// portEndpointInput describes the real endpoint to give a neutron port.
type portEndpointInput struct {
	// Port is the port to bring to life (bound to the controller's compute host).
	Port *ports.Port
	// Subnet is the port's subnet; its gateway is the default route.
	Subnet *subnets.Subnet
	// StateDir is the local host's state directory (Environment.StateDir).
	StateDir string
	// NetworkID is the port's network; its bridge is brq + its first 11 characters.
	NetworkID string
	// AuthorizedKey may log in as root.
	AuthorizedKey ssh.PublicKey
	// HostKey is the endpoint sshd's host key.
	HostKey ed25519.PrivateKey
}

// portEndpoint is a network namespace standing in for a server's NIC, with sshd.
type portEndpoint struct {
	namespace string
	fixedIP   string
}

func waitForPortStatus(ctx context.Context, c *devstack.Clients, id, want string, intervals ...interface{}) {
	_, err := framework.IntervalTimeout(intervals...)
	Expect(err).NotTo(HaveOccurred(), "intervals of waitForPortStatus")
	Eventually(func(ctx context.Context) (string, error) {
		p, err := ports.Get(ctx, c.Network, id).Extract()
		if err != nil {
			return "", err
		}
		return p.Status, nil
	}, intervals...).WithContext(ctx).Should(Equal(want), "Port %s did not become %s", id, want)
}

func waitForFloatingIPStatus(ctx context.Context, c *devstack.Clients, id, want string, intervals ...interface{}) {
	_, err := framework.IntervalTimeout(intervals...)
	Expect(err).NotTo(HaveOccurred(), "intervals of waitForFloatingIPStatus")
	Eventually(func(ctx context.Context) (string, error) {
		f, err := floatingips.Get(ctx, c.Network, id).Extract()
		if err != nil {
			return "", err
		}
		return f.Status, nil
	}, intervals...).WithContext(ctx).Should(Equal(want), "Floating IP %s did not become %s", id, want)
}

// newKey returns a fresh ed25519 key and its signer.
func newKey() (ed25519.PrivateKey, ssh.Signer) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	return priv, s
}

// cloudConfigHostKey is a #cloud-config whose ssh_keys give the server the
// host key priv, so that a client can pin it.
func cloudConfigHostKey(priv ed25519.PrivateKey) []byte {
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	key := strings.TrimSpace(string(pem.EncodeToMemory(block)))
	return []byte("#cloud-config\nssh_keys:\n  ed25519_private: |\n    " + strings.ReplaceAll(key, "\n", "\n    ") + "\n")
}
