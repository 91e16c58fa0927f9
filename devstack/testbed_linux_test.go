package devstack_test

import (
	"os"
	"testing"

	"github.com/stackgate/stackgate/internal/testbed"
)

func TestMain(m *testing.M) {
	// The SSH test bed re-executes this binary inside its namespaces as HTTP server.
	testbed.RunHelperIfRequested()
	os.Exit(m.Run())
}
