package mgmtcluster_test

import (
	"encoding/base64"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/stackgate/stackgate/framework/mgmtcluster"
)

const componentsYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: capo-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: openstackclusters.infrastructure.cluster.x-k8s.io
  annotations:
    cert-manager.io/inject-ca-from: capo-system/capo-serving-cert
  labels:
    cluster.x-k8s.io/v1beta1: v1beta1
spec:
  group: infrastructure.cluster.x-k8s.io
  conversion:
    strategy: Webhook
    webhook:
      clientConfig:
        service:
          name: capo-webhook-service
          namespace: capo-system
          path: /convert
      conversionReviewVersions: [v1]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: images.openstack.k-orc.cloud
spec:
  group: openstack.k-orc.cloud
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: capo-validating-webhook-configuration
  annotations:
    cert-manager.io/inject-ca-from: capo-system/capo-serving-cert
webhooks:
- name: validation.openstackcluster.infrastructure.cluster.x-k8s.io
  clientConfig:
    service:
      name: capo-webhook-service
      namespace: capo-system
      path: /validate-infrastructure-cluster-x-k8s-io-v1beta1-openstackcluster
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: capo-controller-manager
`

var _ = Describe("a provider's components", func() {
	var comp *mgmtcluster.Components
	BeforeEach(func() {
		var err error
		comp, err = mgmtcluster.ParseComponents([]byte(componentsYAML))
		Expect(err).NotTo(HaveOccurred())
	})

	It("keeps the CRDs and webhook configurations, nothing else", func() {
		Expect(names(comp.CRDs)).To(Equal([]string{"openstackclusters.infrastructure.cluster.x-k8s.io", "images.openstack.k-orc.cloud"}))
		Expect(names(comp.Webhooks)).To(Equal([]string{"capo-validating-webhook-configuration"}))
	})

	It("points conversion and admission webhooks at the manager on loopback, trusting the run's CA", func() {
		Expect(comp.Rewrite("infrastructure-openstack", "127.0.0.1:40000", []byte("CA PEM"))).To(Succeed())
		bundle := base64.StdEncoding.EncodeToString([]byte("CA PEM"))

		crd := comp.CRDs[0]
		cc, _, _ := unstructured.NestedMap(crd.Object, "spec", "conversion", "webhook", "clientConfig")
		Expect(cc).To(Equal(map[string]interface{}{"url": "https://127.0.0.1:40000/convert", "caBundle": bundle}))
		Expect(crd.GetAnnotations()).NotTo(HaveKey("cert-manager.io/inject-ca-from"))
		Expect(crd.GetLabels()).To(HaveKeyWithValue("cluster.x-k8s.io/v1beta1", "v1beta1"), "the contract label stays")
		_, found, _ := unstructured.NestedMap(comp.CRDs[1].Object, "spec", "conversion")
		Expect(found).To(BeFalse(), "a CRD without conversion gets none")

		wc := comp.Webhooks[0]
		Expect(wc.GetName()).To(Equal("infrastructure-openstack-capo-validating-webhook-configuration"))
		hooks, _, _ := unstructured.NestedSlice(wc.Object, "webhooks")
		Expect(hooks[0].(map[string]interface{})["clientConfig"]).To(Equal(map[string]interface{}{
			"url":      "https://127.0.0.1:40000/validate-infrastructure-cluster-x-k8s-io-v1beta1-openstackcluster",
			"caBundle": bundle,
		}))
	})

	It("refuses a webhook that is not a service of the provider, naming it", func() {
		y := strings.Replace(componentsYAML, `    service:
      name: capo-webhook-service
      namespace: capo-system
      path: /validate-infrastructure-cluster-x-k8s-io-v1beta1-openstackcluster`, `    url: https://example.invalid/validate`, 1)
		comp, err := mgmtcluster.ParseComponents([]byte(y))
		Expect(err).NotTo(HaveOccurred())
		err = comp.Rewrite("infrastructure-openstack", "127.0.0.1:40000", []byte("CA"))
		Expect(err).To(MatchError(ContainSubstring("validation.openstackcluster.infrastructure.cluster.x-k8s.io")))
		Expect(err).To(MatchError(ContainSubstring("already a URL")))
	})

	It("names the document that is not YAML", func() {
		_, err := mgmtcluster.ParseComponents([]byte("kind: A\n---\n: [\n"))
		Expect(err).To(MatchError(ContainSubstring("document 2")))
	})
})

var _ = Describe("a manager's command line and environment", func() {
	ports := mgmtcluster.ManagerPorts{Webhook: 1, Health: 2, Metrics: 3}

	It("keeps every listener on loopback and leader election off", func() {
		for _, name := range []string{mgmtcluster.FlagsClusterAPI, mgmtcluster.FlagsKubebuilder} {
			args := mgmtcluster.ManagerArgs(name, ports, "/certs", nil)
			Expect(args).To(ContainElement("--leader-elect=false"), name)
			for _, a := range args {
				if strings.Contains(a, "addr") || strings.Contains(a, "address") {
					Expect(a).To(ContainSubstring("=127.0.0.1:"), name)
				}
			}
		}
		Expect(mgmtcluster.ManagerArgs(mgmtcluster.FlagsClusterAPI, ports, "/certs", []string{"A=true", "B=true"})).To(ContainElements(
			"--webhook-port=1", "--webhook-cert-dir=/certs", "--feature-gates=A=true,B=true"))
	})

	It("gives the tunnel's proxy variables in place of the process's own", func() {
		env := mgmtcluster.ManagerEnv([]string{"PATH=/bin", "https_proxy=http://corp:3128", "KUBECONFIG=/other"},
			"/kc", []string{"HTTPS_PROXY=http://127.0.0.1:9"}, []string{"X=1"})
		Expect(env).To(Equal([]string{"PATH=/bin", "KUBECONFIG=/kc", "HTTPS_PROXY=http://127.0.0.1:9", "X=1"}))
		Expect(mgmtcluster.ManagerEnv([]string{"https_proxy=http://corp:3128"}, "/kc", nil, nil)).To(
			ContainElement("https_proxy=http://corp:3128"), "without a tunnel the process's proxy stays")
	})
})

var _ = Describe("reading the managers' directory", func() {
	It("says how to build it", func() {
		_, err := mgmtcluster.ReadProviders("")
		Expect(err).To(MatchError(ContainSubstring("hack/capi/build.sh")))
		_, err = mgmtcluster.ReadProviders(GinkgoT().TempDir())
		Expect(err).To(MatchError(And(ContainSubstring("providers.json"), ContainSubstring("hack/capi/build.sh"))))
	})
})

func names(objs []*unstructured.Unstructured) []string {
	var n []string
	for _, o := range objs {
		n = append(n, o.GetName())
	}
	return n
}
