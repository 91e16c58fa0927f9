package devstack_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/internal/testbed"
)

func TestMain(m *testing.M) {
	// The SSH test bed re-executes this binary inside its namespaces as HTTP server.
	testbed.RunHelperIfRequested()
	os.Exit(m.Run())
}

func TestDevstack(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "devstack")
}
