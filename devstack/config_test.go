package devstack_test

import (
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("Config", func() {
	It("defaults to CAPO's CI environment", func() {
		c := devstack.DefaultConfig()
		Expect(c.Name).To(Equal("capo-e2e"))
		Expect(c.PrivateNetworkCIDR).To(Equal(netip.MustParsePrefix("10.0.3.0/24")))
		Expect(c.ControllerIP.String()).To(Equal("10.0.3.15"))
		Expect(c.WorkerIP.String()).To(Equal("10.0.3.16"))
		Expect(c.FloatingRange.String()).To(Equal("172.24.4.0/24"))
		Expect(c.FailureDomain).To(Equal("testaz1"))
		Expect(c.FailureDomainAlt).To(Equal("testaz2"))
		Expect(c.Cloud).To(Equal("capo-e2e"))
		Expect(c.CloudAdmin).To(Equal("capo-e2e-admin"))
		Expect(c.Validate()).To(Succeed())
		Expect(c.Routes()).To(Equal([]netip.Prefix{netip.MustParsePrefix("10.0.3.0/24"), netip.MustParsePrefix("172.24.4.0/24")}))
	})

	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}

	It("reads CAPO's variables", func() {
		c, err := devstack.ConfigFromEnv(env("PRIVATE_NETWORK_CIDR", "10.1.0.0/16", "CONTROLLER_IP", "10.1.0.5",
			"WORKER_IP", "10.1.0.6", "OPENSTACK_FAILURE_DOMAIN", "az-a", "OPENSTACK_FAILURE_DOMAIN_ALT", "az-b"))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.ControllerIP.String()).To(Equal("10.1.0.5"))
		Expect(c.FailureDomainAlt).To(Equal("az-b"))
		Expect(c.FloatingRange.String()).To(Equal("172.24.4.0/24"), "unset variables keep their defaults")
	})

	It("gives a configuration back as the variables it reads", func() {
		c, err := devstack.ConfigFromEnv(env("FLOATING_RANGE", "172.25.0.0/24", "OPENSTACK_FAILURE_DOMAIN", "az1"))
		Expect(err).NotTo(HaveOccurred())
		var kv []string
		for _, v := range c.EnvVars() {
			kv = append(kv, v.Name, v.Value)
		}
		Expect(kv).To(ContainElements("FLOATING_RANGE", "172.25.0.0/24", "OPENSTACK_FAILURE_DOMAIN", "az1"))
		again, err := devstack.ConfigFromEnv(env(kv...))
		Expect(err).NotTo(HaveOccurred())
		Expect(again).To(Equal(c))
	})

	DescribeTable("refuses bad configurations with the field and the fix",
		func(kv []string, want ...string) {
			_, err := devstack.ConfigFromEnv(env(kv...))
			Expect(err).To(HaveOccurred())
			for _, w := range want {
				Expect(err.Error()).To(ContainSubstring(w))
			}
		},
		Entry("overlapping CIDRs", []string{"FLOATING_RANGE", "10.0.3.128/25"}, "PRIVATE_NETWORK_CIDR 10.0.3.0/24 overlaps FLOATING_RANGE 10.0.3.128/25"),
		Entry("podman's network", []string{"PRIVATE_NETWORK_CIDR", "10.0.0.0/16", "CONTROLLER_IP", "10.0.3.15", "WORKER_IP", "10.0.3.16"}, "overlaps 10.0.2.0/24", "podman"),
		Entry("controller outside its CIDR", []string{"CONTROLLER_IP", "10.0.4.15"}, "CONTROLLER_IP 10.0.4.15 is outside PRIVATE_NETWORK_CIDR 10.0.3.0/24"),
		Entry("worker on the broadcast address", []string{"WORKER_IP", "10.0.3.255"}, "WORKER_IP 10.0.3.255 is the broadcast address"),
		Entry("same address twice", []string{"WORKER_IP", "10.0.3.15"}, "CONTROLLER_IP and WORKER_IP are both 10.0.3.15"),
		Entry("same zone twice", []string{"OPENSTACK_FAILURE_DOMAIN_ALT", "testaz1"}, `both "testaz1"`),
		Entry("not a CIDR", []string{"FLOATING_RANGE", "172.24.4.0"}, `FLOATING_RANGE="172.24.4.0" is not a CIDR`),
		Entry("not an address", []string{"CONTROLLER_IP", "controller"}, `CONTROLLER_IP="controller" is not an IP address`),
		Entry("a cluster name with an underscore", []string{"CLUSTER_NAME", "capo_e2e"}, `CLUSTER_NAME "capo_e2e": use 1-63 lower case letters, digits and dashes`),
		Entry("a cluster name with capitals", []string{"CLUSTER_NAME", "CAPO"}, `CLUSTER_NAME "CAPO"`),
		Entry("a cluster name ending in a dash", []string{"CLUSTER_NAME", "capo-"}, `CLUSTER_NAME "capo-"`),
		Entry("a cluster name with a dot", []string{"CLUSTER_NAME", "capo.e2e"}, `CLUSTER_NAME "capo.e2e"`),
		Entry("IPv6 networks", []string{"PRIVATE_NETWORK_CIDR", "fd00::/64", "CONTROLLER_IP", "fd00::15", "WORKER_IP", "fd00::16", "FLOATING_RANGE", "fd01::/64"},
			"PRIVATE_NETWORK_CIDR fd00::/64: only IPv4 is supported", "FLOATING_RANGE fd01::/64: only IPv4 is supported"),
	)

	It("round-trips an environment through JSON", func() {
		e := &devstack.Environment{Config: devstack.DefaultConfig(), Host: "local",
			SSH:        devstack.SSHEndpoint{Address: "198.19.0.1:22", User: "root", HostKey: "ssh-ed25519 AAAA"},
			CloudsYAML: []byte("clouds: {}\n")}
		b, err := e.Marshal()
		Expect(err).NotTo(HaveOccurred())
		got, err := devstack.UnmarshalEnvironment(b)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(e))
		_, err = devstack.UnmarshalEnvironment([]byte(`{"host":"local"}`))
		Expect(err).To(MatchError(ContainSubstring("no ssh.address")))
	})
})
