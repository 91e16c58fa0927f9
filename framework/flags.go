package framework

import (
	"context"
	"flag"

	"github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"
)

// E2EFlags are the command-line flags of a suite, named as in CAPO's test/e2e
// (go test ./suites/... -args -e2e.config=... or ginkgo ... -- -e2e.config=...).
type E2EFlags struct {
	// ConfigPath is the e2e configuration (-e2e.config; empty: the embedded data/e2e_conf.yaml).
	ConfigPath string
	// ArtifactFolder receives logs and JUnit reports (-e2e.artifacts-folder; default $ARTIFACTS or _artifacts).
	ArtifactFolder string
	// SkipCleanup keeps what teardown would delete (-e2e.skip-resource-cleanup; default $SKIP_RESOURCE_CLEANUP).
	SkipCleanup bool
}

// Bind registers the flags on fs (flag.CommandLine in a suite's init).
func (f *E2EFlags) Bind(fs *flag.FlagSet) {
	fs.StringVar(&f.ConfigPath, "e2e.config", "", "path to the e2e configuration (default: stackgate's embedded data/e2e_conf.yaml)")
	fs.StringVar(&f.ArtifactFolder, "e2e.artifacts-folder", ArtifactFolder(), "folder for logs, resource dumps and JUnit reports")
	fs.BoolVar(&f.SkipCleanup, "e2e.skip-resource-cleanup", SkipCleanupFromEnv(), "keep the environment even when the suite would delete it")
}

// MustLoadE2EConfig loads the e2e configuration the flags name and fails
// the running node when it cannot.
func (f *E2EFlags) MustLoadE2EConfig(ctx context.Context) *clusterctl.E2EConfig {
	conf, err := LoadE2EConfig(ctx, f.ConfigPath)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't load the e2e configuration %q", f.ConfigPath)
	return conf
}
