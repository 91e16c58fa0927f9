package framework_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

// silentSSHD accepts TCP connections on loopback and never answers, as a
// controller whose sshd hangs: a dial to it ends only when its context does.
func silentSSHD() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	DeferCleanup(func() {
		Expect(l.Close()).To(Succeed())
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// setupDataFor is what SetupDevStack would return for an environment whose
// controller's sshd is at addr.
func setupDataFor(addr string) []byte {
	GinkgoHelper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	sp, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	env := &devstack.Environment{
		Config: devstack.DefaultConfig(), Host: "existing",
		SSH:        devstack.SSHEndpoint{Address: addr, User: "stack", PrivateKey: pem.EncodeToMemory(block), HostKey: string(ssh.MarshalAuthorizedKey(sp))},
		CloudsYAML: []byte("clouds: {}\n"),
	}
	raw, err := env.Marshal()
	Expect(err).NotTo(HaveOccurred())
	b, err := json.Marshal(map[string]interface{}{"environment": json.RawMessage(raw), "variables": map[string]string{}})
	Expect(err).NotTo(HaveOccurred())
	return b
}

var _ = Describe("UseDevStack", func() {
	It("gives up its dial when its context ends, as on an interrupt", func(ctx SpecContext) {
		data := setupDataFor(silentSSHD())
		interrupted, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		err := InterceptGomegaFailure(func() { framework.UseDevStack(interrupted, data) })
		Expect(err).To(MatchError(ContainSubstring("Couldn't open a tunnel")))
		Expect(err).To(MatchError(ContainSubstring("context canceled")))
		Expect(time.Since(start)).To(BeNumerically("<", framework.DefaultUseTimeout/2),
			"UseDevStack returned when its context ended, not at its own bound")
	})
})
