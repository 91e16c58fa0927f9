package devstack_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/devstack"
)

func newKeyPair() (privPEM []byte, authorized string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	sp, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(block), string(ssh.MarshalAuthorizedKey(sp))
}

var _ = Describe("Existing host validation", func() {
	var valid devstack.Existing
	BeforeEach(func() {
		clouds, err := os.ReadFile("testdata/clouds-multi.yaml")
		Expect(err).NotTo(HaveOccurred())
		key, _ := newKeyPair()
		_, hostKey := newKeyPair()
		valid = devstack.Existing{CloudsYAML: clouds, Address: "198.19.0.1:22", User: "stack", PrivateKey: key, HostKey: hostKey}
	})

	It("accepts a complete description", func() {
		Expect(valid.Validate(devstack.DefaultConfig())).To(Succeed())
	})

	DescribeTable("names each bad field and its fix",
		func(mutate func(*devstack.Existing), cfg devstack.Config, want ...string) {
			x := valid
			mutate(&x)
			err := x.Validate(cfg)
			Expect(err).To(HaveOccurred())
			for _, w := range want {
				Expect(err.Error()).To(ContainSubstring(w))
			}
			// Up refuses before it touches the network.
			_, upErr := x.Up(context.Background(), cfg)
			Expect(upErr).To(MatchError(err.Error()))
		},
		Entry("no clouds.yaml", func(x *devstack.Existing) { x.CloudsYAML = nil }, devstack.DefaultConfig(), "CloudsYAML is empty"),
		Entry("malformed clouds.yaml", func(x *devstack.Existing) { x.CloudsYAML = []byte("clouds:\n  a: [\n") }, devstack.DefaultConfig(), "clouds.yaml line 2"),
		Entry("missing cloud", func(x *devstack.Existing) {}, devstack.Config{Cloud: "mine"}, `cloud "mine" not found; known clouds: capo-e2e, capo-e2e-admin, other`),
		Entry("address without port", func(x *devstack.Existing) { x.Address = "198.19.0.1" }, devstack.DefaultConfig(), `Address "198.19.0.1" is not host:port: add the port, e.g. 198.19.0.1:22`),
		Entry("no user", func(x *devstack.Existing) { x.User = "" }, devstack.DefaultConfig(), "User is empty"),
		Entry("garbage key", func(x *devstack.Existing) { x.PrivateKey = []byte("not a key") }, devstack.DefaultConfig(), "PrivateKey cannot be parsed"),
		Entry("no host key", func(x *devstack.Existing) { x.HostKey = "" }, devstack.DefaultConfig(), "HostKey is empty", "ssh-keyscan"),
		Entry("garbage host key", func(x *devstack.Existing) { x.HostKey = "ssh-ed25519 !!!" }, devstack.DefaultConfig(), "HostKey cannot be parsed"),
		Entry("several at once", func(x *devstack.Existing) { x.User, x.Address = "", "" }, devstack.DefaultConfig(), "User is empty", "Address is empty"),
	)

	It("names each setting as the user gave it, when it knows the name", func() {
		x := valid
		x.Names = devstack.ExistingNames{CloudsYAML: "MY_CLOUDS", Address: "MY_ADDRESS", User: "MY_USER", PrivateKey: "MY_KEY", HostKey: "MY_HOST_KEY"}
		x.CloudsYAML = []byte("clouds:\n  a: [\n")
		x.Address, x.User, x.PrivateKey, x.HostKey = "198.19.0.1", "", []byte("not a key"), "ssh-ed25519 !!!"
		err := x.Validate(devstack.DefaultConfig())
		Expect(err).To(HaveOccurred())
		for _, want := range []string{"MY_CLOUDS: clouds.yaml line 2", `MY_ADDRESS "198.19.0.1" is not host:port`, "MY_USER is empty", "MY_KEY cannot be parsed", "MY_HOST_KEY cannot be parsed"} {
			Expect(err.Error()).To(ContainSubstring(want))
		}
		for _, field := range []string{"Address ", "User ", "PrivateKey ", "HostKey "} {
			Expect(err.Error()).NotTo(ContainSubstring(field), "the Go field's name, which this user never set")
		}
	})

	It("names the setting of a file it cannot read", func() {
		_, err := devstack.ExistingFromFiles(devstack.ExistingFiles{
			CloudsYAML: "testdata/clouds-multi.yaml", Address: "203.0.113.5:22", User: "stack",
			PrivateKey: filepath.Join(GinkgoT().TempDir(), "missing"), HostKey: "ssh-ed25519 AAAA",
			Names: devstack.ExistingNames{PrivateKey: "MY_KEY"},
		})
		Expect(err).To(MatchError(And(ContainSubstring("MY_KEY: open "), ContainSubstring("no such file"))))
	})

	Describe("reading the host key", func() {
		var hostKey string
		BeforeEach(func() { _, hostKey = newKeyPair() })
		read := func(value string) (*devstack.Existing, error) {
			return devstack.ExistingFromFiles(devstack.ExistingFiles{CloudsYAML: "testdata/clouds-multi.yaml", Address: "203.0.113.5:22", User: "stack", HostKey: value})
		}

		It("takes an authorized_keys line as given", func() {
			x, err := read(strings.TrimSpace(hostKey) + " root@controller")
			Expect(err).NotTo(HaveOccurred())
			Expect(x.HostKey).To(Equal(strings.TrimSpace(hostKey)))
		})
		It("takes a line as ssh-keyscan prints it", func() {
			x, err := read("203.0.113.5 " + strings.TrimSpace(hostKey))
			Expect(err).NotTo(HaveOccurred())
			Expect(x.HostKey).To(Equal(strings.TrimSpace(hostKey)))
		})
		It("reads a file of ssh-keyscan's output and pins its ed25519 key", func() {
			ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			other, err := ssh.NewPublicKey(&ecdsaKey.PublicKey)
			Expect(err).NotTo(HaveOccurred())
			keyscan := "# 203.0.113.5:22 SSH-2.0-OpenSSH_9.2p1 Debian-2\n" +
				"203.0.113.5 " + string(ssh.MarshalAuthorizedKey(other)) + // another type's line first, as ssh-keyscan may print it
				"203.0.113.5 " + hostKey
			path := filepath.Join(GinkgoT().TempDir(), "host_key")
			Expect(os.WriteFile(path, []byte(keyscan), 0o600)).To(Succeed())
			x, err := read(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(x.HostKey).To(Equal(strings.TrimSpace(hostKey)))
			Expect(x.Validate(devstack.DefaultConfig())).To(MatchError(ContainSubstring("PrivateKey is empty")), "only the missing private key is wrong")
		})
		It("says when the file holds no key", func() {
			path := filepath.Join(GinkgoT().TempDir(), "host_key")
			Expect(os.WriteFile(path, []byte("# nothing here\n"), 0o600)).To(Succeed())
			_, err := read(path)
			Expect(err).To(MatchError(ContainSubstring("holds no SSH public key")))
		})
	})
})
