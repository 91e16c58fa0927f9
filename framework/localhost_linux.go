package framework

import (
	"fmt"

	"github.com/go-logr/logr"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

// localHost returns the local host (devstack/local), the given instance or,
// when instance is empty, the default one.
func localHost(log logr.Logger, instance string) (devstack.Host, error) {
	opts := []local.Option{local.WithLogger(log)}
	if instance != "" {
		opts = append(opts, local.WithInstance(instance))
	}
	h, err := local.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvLocalInstance, err)
	}
	return h, nil
}
