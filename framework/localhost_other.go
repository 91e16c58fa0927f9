//go:build !linux

package framework

import (
	"fmt"
	"runtime"

	"github.com/go-logr/logr"

	"github.com/stackgate/stackgate/devstack"
)

// localHost refuses: the local host (devstack/local) builds OpenStack in
// network namespaces of this machine, which needs Linux and root.
func localHost(logr.Logger, string) (devstack.Host, error) {
	return nil, fmt.Errorf("the local DevStack host runs only on Linux, as root (this is %s/%s): set %s=true and the STACKGATE_* variables for an existing cloud, or %s to the environment file of one brought up on a Linux machine",
		runtime.GOOS, runtime.GOARCH, EnvUseExisting, EnvEnvironmentFile)
}
