//go:build !linux

package multiaz_test

import (
	"context"
	"runtime"

	. "github.com/onsi/ginkgo/v2"
)

// startPortEndpoint skips the spec: a port's endpoint is a network namespace
// plugged into the local host's bridge, which only Linux has.
func startPortEndpoint(context.Context, portEndpointInput) *portEndpoint {
	Skip("a port endpoint needs Linux network namespaces; this is " + runtime.GOOS)
	return nil
}
