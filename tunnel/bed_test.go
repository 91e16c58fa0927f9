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

// bed is the topology of the specs that need real parts (sshd, network
// namespaces): the root namespace is the client side, with no route to the
// hosts behind the controller. The first of them starts it (needBed), so
// specs of pure logic run without root; it is closed after the suite.
var bed *testbed.Bed

// needBed starts the bed unless it runs, or skips the spec where it cannot:
// building network namespaces and running sshd needs root.
func needBed(ctx SpecContext) {
	if os.Geteuid() != 0 {
		Skip("this spec builds network namespaces and runs sshd, which needs root; CI runs it as root")
	}
	if bed != nil {
		return
	}
	var err error
	bed, err = testbed.Start(ctx, testbed.Options{Log: GinkgoWriter})
	// Start removes what it made when it fails; on success the AfterSuite does.
	Expect(err).NotTo(HaveOccurred())
}

var _ = AfterSuite(func(ctx SpecContext) {
	if bed != nil {
		Expect(bed.Close(ctx)).To(Succeed())
	}
}, NodeTimeout(time.Minute))
