package tunnel_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"net/netip"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/tunnel"
)

// specTimeout bounds every spec that does network I/O, so a hung
// connection fails the spec instead of holding the suite.
const specTimeout = time.Minute

// routes are the prefixes every configuration of the specs sends over SSH.
var routes = []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24"), netip.MustParsePrefix("172.24.4.0/24")}

// These specs need no bed: every configuration is refused before or at the
// first dial, to a loopback port nothing listens on.
var _ = Describe("tunnel configuration errors name the field and the fix", func() {
	DescribeTable("Open refuses",
		func(ctx SpecContext, mutate func(*tunnel.Config), want ...string) {
			cfg, key := offlineConfig()
			mutate(&cfg)
			_, err := tunnel.Open(ctx, cfg)
			Expect(err).To(HaveOccurred())
			for _, w := range want {
				Expect(err.Error()).To(ContainSubstring(w))
			}
			// The key never appears in an error, not even in part.
			for _, f := range keyFragments(key) {
				Expect(err.Error()).NotTo(ContainSubstring(f), "the error carries part of the private key")
			}
		},
		Entry("no routes", SpecTimeout(specTimeout), func(c *tunnel.Config) { c.Routes = nil }, "Config.Routes is empty", "add the prefixes"),
		Entry("overlapping routes", SpecTimeout(specTimeout), func(c *tunnel.Config) {
			c.Routes = append(routes, netip.MustParsePrefix("10.0.0.0/16"))
		}, "Config.Routes[2] 10.0.0.0/16 overlaps Config.Routes[0] 10.0.3.0/24", "remove one"),
		Entry("a key that cannot be parsed", SpecTimeout(specTimeout), func(c *tunnel.Config) { c.PrivateKey = c.PrivateKey[:len(c.PrivateKey)/2] },
			"Config.PrivateKey cannot be parsed", "PEM-encoded"),
		Entry("an unreadable key file", SpecTimeout(specTimeout), func(c *tunnel.Config) { c.PrivateKey, c.PrivateKeyFile = nil, "/nonexistent/id_ed25519" },
			"Config.PrivateKeyFile", "no such file", "check the path"),
		Entry("an unreachable address", SpecTimeout(specTimeout), func(*tunnel.Config) {},
			"Config.Address 127.0.0.1:", "connection refused", "check the address"),
		Entry("no host key", SpecTimeout(specTimeout), func(c *tunnel.Config) { c.HostKey = nil }, "Config.HostKey", "InsecureIgnoreHostKey"),
		Entry("no port", SpecTimeout(specTimeout), func(c *tunnel.Config) { c.Address = "127.0.0.1" }, "Config.Address", "add the port"),
	)
})

// offlineConfig is a configuration whose only fault is that nothing listens
// at its address, a loopback port just closed; it returns its private key.
func offlineConfig() (tunnel.Config, []byte) {
	GinkgoHelper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	key := pem.EncodeToMemory(block)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return tunnel.Config{
		Address:    addr,
		User:       "nobody",
		PrivateKey: key,
		HostKey:    ssh.MarshalAuthorizedKey(newKey()),
		Routes:     routes,
	}, key
}

// keyFragments returns the lines of the PEM body of key that belong to
// this key alone: every base64 line but the first, which holds the header
// ("openssh-key-v1", cipher and KDF "none") shared by every unencrypted
// OpenSSH key.
func keyFragments(key []byte) []string {
	GinkgoHelper()
	lines := strings.Split(strings.TrimSpace(string(key)), "\n")
	Expect(len(lines)).To(BeNumerically(">=", 4), "a PEM key: BEGIN, two base64 lines or more, END")
	body := lines[2 : len(lines)-1]
	for _, l := range body {
		Expect(len(l)).To(BeNumerically(">=", 32), "base64 line %q is too short to be unique to the key", l)
	}
	return body
}

func newKey() ssh.PublicKey {
	GinkgoHelper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	k, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return k
}
