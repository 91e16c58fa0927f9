package multiaz_test

import (
	"flag"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"

	"github.com/stackgate/stackgate/framework"
)

var (
	flags     framework.E2EFlags
	e2eConfig *clusterctl.E2EConfig
	ds        *framework.DevStack
)

func init() { flags.Bind(flag.CommandLine) }

func TestMultiAZ(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "multi-az")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	conf := flags.MustLoadE2EConfig(ctx)
	return framework.SetupDevStack(ctx, framework.SetupDevStackInput{E2EConfig: conf})
}, func(ctx SpecContext, data []byte) {
	e2eConfig = flags.MustLoadE2EConfig(ctx)
	ds = framework.UseDevStack(data)
})

var _ = SynchronizedAfterSuite(func() {
	if ds != nil {
		Expect(ds.Close()).To(Succeed())
	}
}, func(ctx SpecContext) {
	if ds != nil {
		framework.TearDownDevStack(ctx, framework.TearDownDevStackInput{
			DevStack: ds, ArtifactFolder: filepath.Join(flags.ArtifactFolder, "multiaz"), SkipCleanup: flags.SkipCleanup,
		})
	}
})

var _ = ReportAfterSuite("JUnit report", func(r Report) {
	framework.WriteJUnitReport(r, "multiaz", flags.ArtifactFolder)
})

var _ = AfterEach(func(ctx SpecContext) {
	framework.CollectArtifactsOnFailure(ctx, framework.CollectArtifactsOnFailureInput{DevStack: ds, ArtifactFolder: flags.ArtifactFolder})
})
