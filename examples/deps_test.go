package examples_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// goListDeps lists the packages the given patterns depend on, tests included.
func goListDeps(ctx context.Context, patterns ...string) []string {
	return goListDepsEnv(ctx, nil, patterns...)
}

// goListDepsEnv is goListDeps with variables added to go's environment
// (GOOS=darwin: the dependencies on macOS).
func goListDepsEnv(ctx context.Context, env []string, patterns ...string) []string {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-deps", "-test"}, patterns...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
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

	It("off Linux, framework, devstack and tunnel build without the local host, which needs Linux", func(ctx SpecContext) {
		for _, goos := range []string{"darwin", "windows"} {
			deps := goListDepsEnv(ctx, []string{"GOOS=" + goos, "GOARCH=arm64"}, "./framework", "./devstack", "./tunnel")
			Expect(deps).To(ContainElement("github.com/stackgate/stackgate/framework"), goos)
			Expect(deps).NotTo(ContainElement("github.com/stackgate/stackgate/devstack/local"), goos)
			Expect(deps).NotTo(ContainElement("github.com/stackgate/stackgate/internal/netns"), goos)
		}
		deps := goListDeps(ctx, "./framework")
		Expect(deps).To(ContainElement("github.com/stackgate/stackgate/devstack/local"), "on Linux framework offers the local host")
	}, NodeTimeout(5*time.Minute))
})
