package framework_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

var _ = Describe("HostFromEnv with an existing environment", func() {
	var keyFile, hostKey string
	BeforeEach(func() {
		dir := GinkgoT().TempDir()
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		block, err := ssh.MarshalPrivateKey(priv, "")
		Expect(err).NotTo(HaveOccurred())
		keyFile = filepath.Join(dir, "id_ed25519")
		Expect(os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)).To(Succeed())
		sp, err := ssh.NewPublicKey(pub)
		Expect(err).NotTo(HaveOccurred())
		hostKey = string(ssh.MarshalAuthorizedKey(sp))
		GinkgoT().Setenv(framework.EnvUseExisting, "true")
		GinkgoT().Setenv("STACKGATE_CLOUDS_YAML", "../devstack/testdata/clouds-multi.yaml")
		GinkgoT().Setenv("STACKGATE_SSH_ADDRESS", "198.19.0.1:22")
		GinkgoT().Setenv("STACKGATE_SSH_USER", "stack")
		GinkgoT().Setenv("STACKGATE_SSH_PRIVATE_KEY", keyFile)
		GinkgoT().Setenv("STACKGATE_SSH_HOST_KEY", hostKey)
	})

	It("describes the host the variables give", func() {
		host, err := framework.HostFromEnv(logr.Discard())
		Expect(err).NotTo(HaveOccurred())
		Expect(host).To(BeAssignableToTypeOf(&devstack.Existing{}))
		x := host.(*devstack.Existing)
		Expect(x.Address).To(Equal("198.19.0.1:22"))
		Expect(x.User).To(Equal("stack"))
		Expect(x.Validate(devstack.DefaultConfig())).To(Succeed())
	})

	It("names the variables that are not set", func() {
		GinkgoT().Setenv("STACKGATE_SSH_USER", "")
		GinkgoT().Setenv("STACKGATE_SSH_HOST_KEY", "")
		_, err := framework.HostFromEnv(logr.Discard())
		Expect(err).To(MatchError(ContainSubstring("[STACKGATE_SSH_USER STACKGATE_SSH_HOST_KEY] are not set")))
	})

	It("names the variable of a file it cannot read", func() {
		GinkgoT().Setenv("STACKGATE_SSH_PRIVATE_KEY", keyFile+".missing")
		_, err := framework.HostFromEnv(logr.Discard())
		Expect(err).To(MatchError(ContainSubstring("STACKGATE_SSH_PRIVATE_KEY: open " + keyFile + ".missing")))
	})

	It("names the variable of a value that is wrong, not the Go field", func() {
		GinkgoT().Setenv("STACKGATE_SSH_ADDRESS", "198.19.0.1")
		GinkgoT().Setenv("STACKGATE_SSH_HOST_KEY", "ssh-ed25519 !!!")
		host, err := framework.HostFromEnv(logr.Discard())
		Expect(err).NotTo(HaveOccurred())
		Expect(host).To(BeAssignableToTypeOf(&devstack.Existing{}))
		err = host.(*devstack.Existing).Validate(devstack.DefaultConfig())
		Expect(err).To(MatchError(And(
			ContainSubstring(`STACKGATE_SSH_ADDRESS "198.19.0.1" is not host:port: add the port`),
			ContainSubstring("STACKGATE_SSH_HOST_KEY cannot be parsed"),
		)))
		Expect(err.Error()).NotTo(ContainSubstring("Address "))
	})
})

var _ = Describe("HostFromEnv with the local host", func() {
	It("names the variable of an instance name the local host refuses", func() {
		GinkgoT().Setenv(framework.EnvUseExisting, "")
		GinkgoT().Setenv(framework.EnvLocalInstance, "Not_OK")
		host, err := framework.HostFromEnv(logr.Discard())
		Expect(err).To(MatchError(ContainSubstring(`STACKGATE_LOCAL_INSTANCE: local host: instance name "Not_OK": use 1-8 lower case letters`)))
		Expect(host).To(BeNil(), "no typed nil in the interface")
	})
})
