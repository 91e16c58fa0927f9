package framework_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"

	"github.com/stackgate/stackgate/devstack"
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

// TestLoadE2EConfigOutsideGinkgo runs before the Ginkgo suite registers its
// fail handler (go test runs the tests of a package in file order): loading
// a configuration, valid or not, works without one and sets none.
func TestLoadE2EConfigOutsideGinkgo(t *testing.T) {
	configured := func() bool { return Default.(interface{ IsConfigured() bool }).IsConfigured() }
	before := configured()
	t.Logf("Gomega has a fail handler before: %v", before)
	conf, err := framework.LoadE2EConfig(context.Background(), "")
	if err != nil || conf.GetIntervals("default", "wait-alt-az") == nil {
		t.Fatalf("LoadE2EConfig of the embedded configuration: %v", err)
	}
	path := filepath.Join(t.TempDir(), "e2e_conf.yaml")
	if err := os.WriteFile(path, []byte("managementClusterName: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.LoadE2EConfig(context.Background(), path); err == nil {
		t.Fatalf("LoadE2EConfig(%s) accepted a configuration without providers", path)
	}
	if after := configured(); after != before {
		t.Fatalf("LoadE2EConfig changed whether Gomega has a fail handler: %v before, %v after", before, after)
	}
}

var _ = Describe("ConfigFromE2EConfig", func() {
	// unsetEnv clears names for the spec and restores them after it.
	unsetEnv := func(names ...string) {
		for _, name := range names {
			if v, ok := os.LookupEnv(name); ok {
				Expect(os.Unsetenv(name)).To(Succeed())
				DeferCleanup(os.Setenv, name, v)
			}
		}
	}

	It("takes CAPO's variables from the e2e configuration, with the process environment winning", func() {
		unsetEnv("CLUSTER_NAME", "PRIVATE_NETWORK_CIDR", "CONTROLLER_IP", "WORKER_IP", "FLOATING_RANGE", "OPENSTACK_FAILURE_DOMAIN_ALT")
		GinkgoT().Setenv("OPENSTACK_FAILURE_DOMAIN", "az-from-env")
		conf := &clusterctl.E2EConfig{Variables: map[string]string{
			"CLUSTER_NAME":             "from-conf",
			"PRIVATE_NETWORK_CIDR":     "10.1.3.0/24",
			"CONTROLLER_IP":            "10.1.3.15",
			"WORKER_IP":                "10.1.3.16",
			"FLOATING_RANGE":           "172.25.4.0/24",
			"OPENSTACK_FAILURE_DOMAIN": "az-from-conf",
		}}
		cfg, err := framework.ConfigFromE2EConfig(conf)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Name).To(Equal("from-conf"))
		Expect(cfg.PrivateNetworkCIDR).To(Equal(netip.MustParsePrefix("10.1.3.0/24")))
		Expect(cfg.ControllerIP).To(Equal(netip.MustParseAddr("10.1.3.15")))
		Expect(cfg.FloatingRange).To(Equal(netip.MustParsePrefix("172.25.4.0/24")))
		Expect(cfg.FailureDomain).To(Equal("az-from-env"), "the process environment wins over the e2e configuration")
		Expect(cfg.FailureDomainAlt).To(Equal(devstack.DefaultFailureDomainAlt), "set nowhere: the default")
	})

	It("names the variable of an invalid value and where it may come from", func() {
		unsetEnv("PRIVATE_NETWORK_CIDR", "FLOATING_RANGE", "CONTROLLER_IP", "WORKER_IP")
		_, err := framework.ConfigFromE2EConfig(&clusterctl.E2EConfig{Variables: map[string]string{"PRIVATE_NETWORK_CIDR": "10.0.3.0"}})
		Expect(err).To(MatchError(ContainSubstring(`PRIVATE_NETWORK_CIDR="10.0.3.0" is not a CIDR`)))
		Expect(err).To(MatchError(ContainSubstring("from the e2e configuration's variables: PRIVATE_NETWORK_CIDR")), "where the value came from")
		_, err = framework.ConfigFromE2EConfig(&clusterctl.E2EConfig{Variables: map[string]string{"FLOATING_RANGE": "10.0.3.0/24"}})
		Expect(err).To(MatchError(ContainSubstring("FLOATING_RANGE")), "overlapping the private network")
	})

	It("is CAPO's default configuration for the embedded e2e configuration", func(ctx SpecContext) {
		unsetEnv(envVarNames()...)
		conf, err := framework.LoadE2EConfig(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		cfg, err := framework.ConfigFromE2EConfig(conf)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg).To(Equal(devstack.DefaultConfig()), "data/e2e_conf.yaml must describe the defaults")
	})
})

// envVarNames are the variables devstack.ConfigFromEnv reads.
func envVarNames() []string {
	var names []string
	for _, v := range devstack.DefaultConfig().EnvVars() {
		names = append(names, v.Name)
	}
	return names
}
