//go:build linux

package tunnel_test

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/internal/testbed"
)

func TestMain(m *testing.M) {
	// The bed re-executes this binary inside its namespaces as HTTP server.
	testbed.RunHelperIfRequested()
	os.Exit(m.Run())
}

func TestTunnel(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "tunnel")
}

// bed is the topology every spec uses: the root namespace is the client
// side, with no route to the hosts behind the controller.
var bed *testbed.Bed

var _ = BeforeSuite(func(ctx SpecContext) {
	if os.Geteuid() != 0 {
		Skip("the tunnel tests build network namespaces and run sshd, which needs root; CI runs them as root")
	}
	var err error
	bed, err = testbed.Start(ctx, testbed.Options{Log: GinkgoWriter})
	// Start removes what it made when it fails; on success Close does.
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(bed.Close(ctx)).To(Succeed())
	}, NodeTimeout(time.Minute))
}, NodeTimeout(2*time.Minute))
