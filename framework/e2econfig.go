package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"

	"github.com/stackgate/stackgate/data"
)

// LoadE2EConfig loads an e2e configuration through the Cluster API test
// framework (clusterctl.LoadE2EConfig: release markers resolved, defaults
// applied, providers and intervals validated) and returns its failures as an
// error instead of failing the running spec. An empty path loads stackgate's
// embedded data/e2e_conf.yaml. It works outside Ginkgo too: where Gomega has
// no fail handler yet, it registers one that panics with the failure.
//
// Intervals come from the result with GetIntervals, e.g.
// conf.GetIntervals("default", "wait-alt-az").
func LoadE2EConfig(ctx context.Context, path string) (*clusterctl.E2EConfig, error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "stackgate-e2e-config-")
		if err != nil {
			return nil, fmt.Errorf("load embedded e2e config: %w", err)
		}
		defer os.RemoveAll(dir)
		b, err := data.E2E.ReadFile(data.E2EConfigPath)
		if err != nil {
			return nil, fmt.Errorf("load embedded e2e config: %w", err)
		}
		path = filepath.Join(dir, "e2e_conf.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("load embedded e2e config: %w", err)
		}
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load e2e config: %w", err)
	}
	if g, ok := gomega.Default.(interface{ IsConfigured() bool }); ok && !g.IsConfigured() {
		// Outside a Ginkgo suite (a command, a plain test): clusterctl
		// asserts with Gomega, which panics without a fail handler even
		// where InterceptGomegaFailure catches its failures.
		gomega.RegisterFailHandler(func(message string, _ ...int) { panic(message) })
	}
	var conf *clusterctl.E2EConfig
	err := gomega.InterceptGomegaFailure(func() {
		conf = clusterctl.LoadE2EConfig(ctx, clusterctl.LoadE2EConfigInput{ConfigPath: path})
	})
	if err != nil {
		return nil, fmt.Errorf("load e2e config %s: %w", path, err)
	}
	if conf == nil {
		return nil, errors.New("load e2e config " + path + ": no configuration returned")
	}
	return conf, nil
}
