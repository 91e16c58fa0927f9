package framework_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/framework"
)

var _ = Describe("LoadE2EConfig", func() {
	It("loads the embedded configuration through the Cluster API test framework", func(ctx SpecContext) {
		conf, err := framework.LoadE2EConfig(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(conf.GetIntervals("default", "wait-alt-az")).To(Equal([]interface{}{"20m", "10s"}))
		Expect(conf.GetIntervals("multi-az", "wait-server-active")).To(Equal([]interface{}{"5m", "2s"}), "spec intervals fall back to default/")
		Expect(conf.GetIntervals("default", "wait-devstack")).To(HaveLen(2))
		Expect(conf.Variables).To(HaveKeyWithValue("OPENSTACK_FAILURE_DOMAIN", "testaz1"))
		Expect(conf.Variables).To(HaveKeyWithValue("OPENSTACK_FAILURE_DOMAIN_ALT", "testaz2"))
		Expect(conf.Variables).To(HaveKeyWithValue("OPENSTACK_CLOUD", "capo-e2e"))
		Expect(conf.Variables).To(HaveKeyWithValue("OPENSTACK_NODE_MACHINE_FLAVOR", "m1.small"))
		Expect(conf.ManagementClusterName).To(Equal("capo-e2e"))
	})

	It("returns what the Cluster API test framework rejects as an error", func(ctx SpecContext) {
		path := filepath.Join(GinkgoT().TempDir(), "e2e_conf.yaml")
		Expect(os.WriteFile(path, []byte("managementClusterName: x\nintervals:\n  default/wait-x: [\"soon\"]\n"), 0o600)).To(Succeed())
		_, err := framework.LoadE2EConfig(ctx, path)
		Expect(err).To(MatchError(ContainSubstring("core-provider")))
		Expect(err).To(MatchError(ContainSubstring(path)))
	})

	It("says which file is missing", func(ctx SpecContext) {
		_, err := framework.LoadE2EConfig(ctx, "/nonexistent/e2e_conf.yaml")
		Expect(err).To(MatchError(ContainSubstring("/nonexistent/e2e_conf.yaml")))
	})
})
