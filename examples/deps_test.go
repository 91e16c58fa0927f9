package examples_test

import (
	"context"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// goListDeps lists the packages the given patterns depend on, tests included.
func goListDeps(ctx context.Context, patterns ...string) []string {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-deps", "-test"}, patterns...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	Expect(err).NotTo(HaveOccurred(), "go list -deps %v: %s", patterns, stderr)
	return strings.Fields(string(out))
}

func kubernetesPackages(deps []string) []string {
	var k8s []string
	for _, p := range deps {
		if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "sigs.k8s.io/cluster-api") || strings.HasPrefix(p, "sigs.k8s.io/controller-runtime") {
			k8s = append(k8s, p)
		}
	}
	return k8s
}

var _ = Describe("dependencies for importers outside Cluster API", func() {
	It("the acceptance example, devstack, devstack/local and tunnel pull in no Kubernetes package", func(ctx SpecContext) {
		deps := goListDeps(ctx, "./examples/acceptance/...", "./devstack", "./devstack/local", "./tunnel")
		Expect(deps).To(ContainElements(
			"github.com/stackgate/stackgate/devstack",
			"github.com/stackgate/stackgate/devstack/local",
			"github.com/stackgate/stackgate/tunnel",
		), "go list should see the packages it was asked about")
		Expect(kubernetesPackages(deps)).To(BeEmpty(), "Kubernetes or Cluster API packages in the dependencies of the importer-facing packages")
	}, NodeTimeout(5*time.Minute))

	It("the check would notice a Kubernetes dependency (framework has one)", func(ctx SpecContext) {
		deps := goListDeps(ctx, "./framework")
		Expect(kubernetesPackages(deps)).To(ContainElement("sigs.k8s.io/cluster-api/test/framework/clusterctl"))
	}, NodeTimeout(5*time.Minute))
})
