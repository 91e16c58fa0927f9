package framework

import (
	"context"
	"flag"
	"fmt"

	"github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"
)

// E2EFlags are the settings of a suite that stackgate's own suites take from
// the command line (go test ./suites/... -args -e2e.config=... or ginkgo ...
// -- -e2e.config=...). The framework registers no flags itself: a suite
// either binds these to a flag set of its choice with Bind, or, like CAPO's,
// which binds -config-path, -artifacts-folder and -skip-cleanup already,
// fills the fields from its own settings:
//
//	flags := sgframework.E2EFlags{ConfigPath: e2eCtx.Settings.ConfigPath,
//		ArtifactFolder: e2eCtx.Settings.ArtifactFolder, SkipCleanup: e2eCtx.Settings.SkipCleanup}
type E2EFlags struct {
	// ConfigPath is the e2e configuration (-e2e.config; empty: the embedded data/e2e_conf.yaml).
	ConfigPath string
	// ArtifactFolder receives logs and JUnit reports (-e2e.artifacts-folder; default $ARTIFACTS or _artifacts).
	ArtifactFolder string
	// SkipCleanup keeps what teardown would delete (-e2e.skip-resource-cleanup; default $SKIP_RESOURCE_CLEANUP).
	SkipCleanup bool
}

// E2EFlagNames are the names Bind registers.
var E2EFlagNames = []string{"e2e.config", "e2e.artifacts-folder", "e2e.skip-resource-cleanup"}

// Bind registers -e2e.config, -e2e.artifacts-folder and
// -e2e.skip-resource-cleanup on fs (e.g. flag.CommandLine in a suite's own
// init, or a flag set of its own). A name fs defines already is an error
// naming it, and nothing is registered: flag panics on a second definition.
func (f *E2EFlags) Bind(fs *flag.FlagSet) error {
	for _, name := range E2EFlagNames {
		if fs.Lookup(name) != nil {
			return fmt.Errorf("bind e2e flags: flag -%s is defined already on %s; fill E2EFlags from the suite's own flags instead", name, fs.Name())
		}
	}
	fs.StringVar(&f.ConfigPath, E2EFlagNames[0], "", "path to the e2e configuration (default: stackgate's embedded data/e2e_conf.yaml)")
	fs.StringVar(&f.ArtifactFolder, E2EFlagNames[1], ArtifactFolder(), "folder for logs, resource dumps and JUnit reports")
	fs.BoolVar(&f.SkipCleanup, E2EFlagNames[2], SkipCleanupFromEnv(), "keep the environment even when the suite would delete it")
	return nil
}

// MustLoadE2EConfig loads the e2e configuration the flags name and fails
// the running node when it cannot.
func (f *E2EFlags) MustLoadE2EConfig(ctx context.Context) *clusterctl.E2EConfig {
	conf, err := LoadE2EConfig(ctx, f.ConfigPath)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't load the e2e configuration %q", f.ConfigPath)
	return conf
}
