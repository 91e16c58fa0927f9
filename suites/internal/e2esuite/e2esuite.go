// Package e2esuite registers the suite-level Ginkgo nodes that stackgate's
// suites share: process 1 brings the environment up once
// (framework.SetupDevStack) and every process attaches to it with its own
// tunnel; after the specs each process closes its tunnel and process 1
// collects the environment's logs into <artifacts>/<name>/devstack; a JUnit
// report is written; a failed spec's artifacts are collected. The
// environment keeps running for later runs (`make local-down` removes the
// local one), so -e2e.skip-resource-cleanup changes nothing here.
//
// A suite's test file needs only
//
//	var suite = e2esuite.Register("smoke")
//
//	func TestSmoke(t *testing.T) {
//		RegisterFailHandler(Fail)
//		RunSpecs(t, "smoke")
//	}
//
// Providers that write their own suite call the framework functions in
// their own SynchronizedBeforeSuite the same way (see framework's example).
package e2esuite

import (
	"flag"
	"path/filepath"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"

	"github.com/stackgate/stackgate/framework"
)

// Suite is what a suite's specs use, filled in on every process before its
// first spec runs.
type Suite struct {
	// Flags are the suite's command-line flags (-e2e.config and the like).
	Flags framework.E2EFlags
	// E2EConfig is the e2e configuration the flags name.
	E2EConfig *clusterctl.E2EConfig
	// DevStack is this process's view of the shared environment.
	DevStack *framework.DevStack
}

// Register binds the suite's flags on flag.CommandLine and registers its
// suite-level nodes. name names the suite's artifact folder (below
// -e2e.artifacts-folder) and its JUnit report. setUp runs on every process
// after it attached to the environment (Ginkgo allows one before-suite
// node, so a suite's own set-up goes here). Call it once per test package,
// at package level, so the nodes exist before RunSpecs.
func Register(name string, setUp ...func(ginkgo.SpecContext)) *Suite {
	s := &Suite{}
	if err := s.Flags.Bind(flag.CommandLine); err != nil {
		panic(err) // at package initialisation: nothing can report it better
	}

	ginkgo.SynchronizedBeforeSuite(func(ctx ginkgo.SpecContext) []byte {
		conf := s.Flags.MustLoadE2EConfig(ctx)
		return framework.SetupDevStack(ctx, framework.SetupDevStackInput{E2EConfig: conf})
	}, func(ctx ginkgo.SpecContext, data []byte) {
		s.E2EConfig = s.Flags.MustLoadE2EConfig(ctx)
		s.DevStack = framework.UseDevStack(ctx, data)
		for _, f := range setUp {
			f(ctx)
		}
	})

	ginkgo.SynchronizedAfterSuite(func() {
		if s.DevStack != nil {
			gomega.Expect(s.DevStack.Close()).To(gomega.Succeed())
		}
	}, func(ctx ginkgo.SpecContext) {
		if s.DevStack != nil {
			framework.TearDownDevStack(ctx, framework.TearDownDevStackInput{
				DevStack: s.DevStack, ArtifactFolder: filepath.Join(s.Flags.ArtifactFolder, name),
			})
		}
	})

	ginkgo.ReportAfterSuite("JUnit report", func(r ginkgo.Report) {
		framework.WriteJUnitReport(r, name, s.Flags.ArtifactFolder)
	})

	ginkgo.AfterEach(func(ctx ginkgo.SpecContext) {
		framework.CollectArtifactsOnFailure(ctx, framework.CollectArtifactsOnFailureInput{DevStack: s.DevStack, ArtifactFolder: s.Flags.ArtifactFolder})
	})
	return s
}
