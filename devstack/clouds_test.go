package devstack_test

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	yaml "gopkg.in/yaml.v3"

	"github.com/stackgate/stackgate/devstack"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBdummyCAforvariables\n-----END CERTIFICATE-----\n"

var _ = Describe("clouds.yaml", func() {
	var multi []byte
	BeforeEach(func() {
		var err error
		multi, err = os.ReadFile("testdata/clouds-multi.yaml")
		Expect(err).NotTo(HaveOccurred())
	})

	It("lists the clouds it holds", func() {
		cy, err := devstack.ParseCloudsYAML(multi)
		Expect(err).NotTo(HaveOccurred())
		Expect(cy.Names()).To(Equal([]string{"capo-e2e", "capo-e2e-admin", "other"}))
	})

	DescribeTable("refuses malformed files with the line and the field",
		func(doc string, line int, field, problem string) {
			_, err := devstack.ParseCloudsYAML([]byte(doc))
			var ce *devstack.CloudsYAMLError
			Expect(errors.As(err, &ce)).To(BeTrue(), "error %v", err)
			Expect(ce.Line).To(Equal(line))
			Expect(ce.Field).To(Equal(field))
			Expect(err.Error()).To(ContainSubstring(problem))
			if line > 0 {
				Expect(err.Error()).To(HavePrefix("clouds.yaml line "))
			}
		},
		Entry("unclosed list", "clouds:\n  a:\n    auth: [\n", 3, "", "line 3: did not find expected node content; fix the YAML syntax"),
		Entry("bad indentation", "clouds:\n  a:\n    auth:\n      auth_url: x\n     username: y\n", 2, "", "did not find expected key"),
		Entry("stray colon", "clouds:\n  a:\n    auth:\n      auth_url: x\n    region: : b\n", 5, "", "mapping values are not allowed in this context"),
		Entry("wrong type", "clouds:\n  a:\n    auth:\n      auth_url: http://x/v3\n      password: [1, 2]\n", 5, "clouds.a.auth.password", "cannot unmarshal !!seq into string"),
		Entry("no clouds key", "cloud:\n  a: {}\n", 1, "clouds", "missing"),
		Entry("clouds is a list", "clouds:\n  - a\n", 2, "clouds", "not a mapping"),
		Entry("no auth", "clouds:\n  a:\n    region_name: RegionOne\n", 3, "clouds.a.auth", "missing"),
		Entry("no auth_url", "clouds:\n  a:\n    auth:\n      username: demo\n", 4, "clouds.a.auth.auth_url", "missing"),
		Entry("empty", "\n", 0, "", "empty"),
	)

	It("names the clouds that exist when one is missing", func() {
		cy, err := devstack.ParseCloudsYAML(multi)
		Expect(err).NotTo(HaveOccurred())
		_, err = cy.Cloud("capo")
		Expect(err).To(MatchError(`clouds.yaml: cloud "capo" not found; known clouds: capo-e2e, capo-e2e-admin, other`))
		var nf *devstack.CloudNotFoundError
		Expect(errors.As(err, &nf)).To(BeTrue())
	})

	It("extracts one cloud with every field and a new cacert path", func() {
		cy, err := devstack.ParseCloudsYAML(multi)
		Expect(err).NotTo(HaveOccurred())
		b, err := cy.Single("capo-e2e", "/etc/certs/cacert")
		Expect(err).NotTo(HaveOccurred())
		var got map[string]map[string]map[string]any
		Expect(yaml.Unmarshal(b, &got)).To(Succeed())
		Expect(got["clouds"]).To(HaveLen(1))
		c := got["clouds"]["capo-e2e"]
		Expect(c["cacert"]).To(Equal("/etc/certs/cacert"))
		Expect(c["block_storage_api_version"]).To(Equal(3), "fields clientconfig does not know survive")
		Expect(c["auth"]).To(HaveKeyWithValue("password", "demo-pa$$word"))
	})
})

var _ = Describe("Variables", func() {
	var multi []byte
	BeforeEach(func() {
		var err error
		multi, err = os.ReadFile("testdata/clouds-multi.yaml")
		Expect(err).NotTo(HaveOccurred())
	})
	decode := func(v devstack.Variables, name string) string {
		b, err := base64.StdEncoding.DecodeString(v[name])
		Expect(err).NotTo(HaveOccurred(), name)
		return string(b)
	}

	It("are env.rc's for the chosen cloud of a clouds.yaml with several clouds and a CA", func() {
		v, err := devstack.VariablesFromCloudsYAML(multi, []byte(testCA), devstack.DefaultConfig(),
			devstack.WithExternalNetworkID("ext-id"), devstack.WithVar(devstack.VarDNSNameservers, "10.0.3.1"))
		Expect(err).NotTo(HaveOccurred())
		Expect(v).To(HaveKeyWithValue(devstack.VarCloud, "capo-e2e"))
		Expect(v).To(HaveKeyWithValue(devstack.VarFailureDomain, "testaz1"))
		Expect(v).To(HaveKeyWithValue(devstack.VarFailureDomainAlt, "testaz2"))
		Expect(v).To(HaveKeyWithValue(devstack.VarExternalNetworkID, "ext-id"))
		Expect(v).To(HaveKeyWithValue(devstack.VarDNSNameservers, "10.0.3.1"))
		Expect(v).To(HaveKeyWithValue(devstack.VarControlPlaneMachineFlavor, "m1.medium"))
		Expect(v).To(HaveKeyWithValue(devstack.VarNodeMachineFlavor, "m1.small"))
		Expect(decode(v, devstack.VarCloudCACertB64)).To(Equal(testCA))

		cy, err := devstack.ParseCloudsYAML([]byte(decode(v, devstack.VarCloudYAMLB64)))
		Expect(err).NotTo(HaveOccurred())
		Expect(cy.Names()).To(Equal([]string{"capo-e2e"}))
		c, err := cy.Cloud("capo-e2e")
		Expect(err).NotTo(HaveOccurred())
		Expect(c.CACertFile).To(Equal(devstack.DefaultCACertPath))

		Expect(decode(v, devstack.VarCloudProviderConfB64)).To(Equal(`[Global]
auth-url="https://10.0.3.15/identity"
username="demo"
password="demo-pa$$word"
tenant-id="0123456789abcdef"
tenant-name="demo"
domain-name="Default"
ca-file="/etc/certs/cacert"
region="RegionOne"
`))
	})

	It("write an empty CA as env.rc does and no ca-file", func() {
		v, err := devstack.VariablesFromCloudsYAML(multi, nil, devstack.DefaultConfig(), devstack.WithVarsCloud("capo-e2e-admin"))
		Expect(err).NotTo(HaveOccurred())
		Expect(v[devstack.VarCloudCACertB64]).To(Equal("Cg=="))
		conf := decode(v, devstack.VarCloudProviderConfB64)
		Expect(conf).To(ContainSubstring(`username="admin"`))
		Expect(conf).NotTo(ContainSubstring("ca-file"))
	})

	It("use an application credential when the cloud has one", func() {
		v, err := devstack.VariablesFromCloudsYAML(multi, nil, devstack.DefaultConfig(), devstack.WithVarsCloud("other"))
		Expect(err).NotTo(HaveOccurred())
		conf := decode(v, devstack.VarCloudProviderConfB64)
		Expect(conf).To(ContainSubstring(`application-credential-id="ac-id"`))
		Expect(conf).To(ContainSubstring(`application-credential-secret="ac-secret-XYZ"`))
		Expect(conf).NotTo(ContainSubstring("username"))
	})

	It("print without secrets whatever the verb", func() {
		v, err := devstack.VariablesFromCloudsYAML(multi, []byte(testCA), devstack.DefaultConfig())
		Expect(err).NotTo(HaveOccurred())
		for _, s := range []string{v.String(), fmtAll(v)} {
			Expect(s).To(ContainSubstring("OPENSTACK_CLOUD=capo-e2e\n"))
			Expect(s).To(ContainSubstring("OPENSTACK_CLOUD_YAML_B64=<masked"))
			Expect(s).NotTo(ContainSubstring(v[devstack.VarCloudYAMLB64]))
			Expect(s).NotTo(ContainSubstring(v[devstack.VarCloudProviderConfB64]))
			Expect(s).NotTo(ContainSubstring("demo-pa$$word"))
		}
	})

	It("mask the variables a caller adds when their names say they are secrets, as artifacts do", func() {
		v := devstack.Variables{
			"SSH_PRIVATE_KEY": "private-key-value", "API_KEY": "api-key-value", "DB_PASSWD": "passwd-value",
			"ADMIN_PASSWORD": "password-value", "OS_TOKEN": "token-value", "APP_CREDENTIAL": "credential-value",
			devstack.VarSSHKeyName: "cluster-api-provider-openstack-sigs-k8s-io", "KUBERNETES_VERSION": "v1.31.0",
		}
		for _, s := range []string{v.String(), fmtAll(v)} {
			for _, secret := range []string{"private-key-value", "api-key-value", "passwd-value", "password-value", "token-value", "credential-value"} {
				Expect(s).NotTo(ContainSubstring(secret))
			}
			Expect(s).To(ContainSubstring("SSH_PRIVATE_KEY=<masked, 17 bytes>\n"))
			Expect(s).To(ContainSubstring("OPENSTACK_SSH_KEY_NAME=cluster-api-provider-openstack-sigs-k8s-io\n"), "a key's name is no secret")
			Expect(s).To(ContainSubstring("KUBERNETES_VERSION=v1.31.0\n"))
		}
	})

	It("report a missing cloud with the ones that exist", func() {
		_, err := devstack.VariablesFromCloudsYAML(multi, nil, devstack.Config{Cloud: "nope"})
		Expect(err).To(MatchError(ContainSubstring(`cloud "nope" not found; known clouds: capo-e2e, capo-e2e-admin, other`)))
	})
})

func fmtAll(v devstack.Variables) string {
	var b strings.Builder
	for _, f := range []string{"%v", "%s", "%+v", "%#v", "%q"} {
		b.WriteString(sprintf(f, v))
	}
	return b.String()
}
