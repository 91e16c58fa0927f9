package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/cluster-api/test/framework/clusterctl"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/data"
)

// LoadE2EConfig loads an e2e configuration as the Cluster API test
// framework's clusterctl.LoadE2EConfig does (release markers resolved,
// defaults applied, paths made absolute, providers and intervals
// validated), with the same E2EConfig methods, but returns failures as an
// error instead of asserting with Gomega: it works outside Ginkgo and sets
// no fail handler or other process-wide state. An empty path loads
// stackgate's embedded data/e2e_conf.yaml.
//
// Intervals come from the result with GetIntervals, e.g.
// conf.GetIntervals("default", "wait-alt-az").
func LoadE2EConfig(ctx context.Context, path string) (*clusterctl.E2EConfig, error) {
	var (
		b   []byte
		err error
		dir string // where relative paths are resolved; the embedded configuration has none
	)
	if path == "" {
		path = "embedded " + data.E2EConfigPath
		if b, err = data.E2E.ReadFile(data.E2EConfigPath); err != nil {
			return nil, fmt.Errorf("load e2e config %s: %w", path, err)
		}
	} else {
		if b, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("load e2e config: %w", err)
		}
		dir = filepath.Dir(path)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("load e2e config %s: the file is empty", path)
	}
	conf := &clusterctl.E2EConfig{}
	if err := yaml.Unmarshal(b, conf); err != nil {
		return nil, fmt.Errorf("load e2e config %s: %w", path, err)
	}
	if err := conf.ResolveReleases(ctx); err != nil {
		return nil, fmt.Errorf("load e2e config %s: resolve release markers: %w", path, err)
	}
	conf.Defaults()
	if dir != "" {
		conf.AbsPaths(dir)
	}
	if err := conf.Validate(); err != nil {
		return nil, fmt.Errorf("load e2e config %s: %w", path, err)
	}
	return conf, nil
}
