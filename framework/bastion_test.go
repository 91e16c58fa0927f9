package framework_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/framework"
	"github.com/stackgate/stackgate/tunnel"
)

var _ = Describe("BastionDialer input", func() {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	signer, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())

	DescribeTable("names the missing field and the fix",
		func(ctx SpecContext, mutate func(*framework.BastionDialerInput), want string) {
			in := framework.BastionDialerInput{Tunnel: &tunnel.Tunnel{}, Address: "172.24.4.10", User: "cirros", Signer: signer, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
			mutate(&in)
			_, err := framework.BastionDialer(ctx, in)
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("no tunnel", func(in *framework.BastionDialerInput) { in.Tunnel = nil }, "Tunnel is nil: pass DevStack.Tunnel"),
		Entry("no user", func(in *framework.BastionDialerInput) { in.User = "" }, "User is empty"),
		Entry("no signer", func(in *framework.BastionDialerInput) { in.Signer = nil }, "Signer is nil"),
		Entry("no host key check", func(in *framework.BastionDialerInput) { in.HostKeyCallback = nil }, "HostKeyCallback is nil: pin the key"),
		Entry("no address at all", func(in *framework.BastionDialerInput) { in.Address = "" }, "no address: set Address, OpenStackCluster, or Reader"),
		Entry("a name instead of an address", func(in *framework.BastionDialerInput) { in.Address = "bastion" }, `address "bastion" is neither an IP address nor host:port`),
	)

	It("adds port 22 to a bare address and keeps an explicit port", func(ctx SpecContext) {
		Expect(framework.BastionAddress(ctx, framework.BastionDialerInput{Address: "172.24.4.10"})).To(Equal("172.24.4.10:22"))
		Expect(framework.BastionAddress(ctx, framework.BastionDialerInput{Address: "172.24.4.10:2222"})).To(Equal("172.24.4.10:2222"))
	})
})

// bastionLookupSpecs are the lookup specs for a management cluster that
// serves the OpenStackCluster in version (and no other).
func bastionLookupSpecs(version string, start func(ctx SpecContext) *kube) {
	const ns = "bastion-dialer"
	var k *kube

	BeforeAll(func(ctx SpecContext) {
		k = start(ctx)
		Expect(client.IgnoreAlreadyExists(k.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
	})

	newCluster := func(ctx SpecContext, name string) *unstructured.Unstructured {
		GinkgoHelper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(framework.OpenStackClusterGVK.GroupKind().WithVersion(version))
		u.SetNamespace(ns)
		u.SetName(name)
		Expect(unstructured.SetNestedMap(u.Object, map[string]interface{}{"cloudName": "capo-e2e", "name": "capo-e2e-cloud"}, "spec", "identityRef")).To(Succeed())
		Expect(k.client.Create(ctx, u)).To(Succeed(), "The %s CRD should accept the OpenStackCluster", version)
		DeferCleanup(func(ctx SpecContext) { Expect(k.client.Delete(ctx, u)).To(Succeed()) })
		return u
	}

	It("says when the cluster has no bastion floating IP yet", func(ctx SpecContext) {
		newCluster(ctx, "no-bastion")
		_, err := framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "no-bastion"})
		Expect(err).To(MatchError(ContainSubstring("OpenStackCluster bastion-dialer/no-bastion (infrastructure.cluster.x-k8s.io/" + version + ") has no status.bastion.floatingIP yet")))
	})

	It("reads status.bastion.floatingIP through the API server", func(ctx SpecContext) {
		c := newCluster(ctx, "with-bastion")
		Expect(unstructured.SetNestedMap(c.Object, map[string]interface{}{
			"ready": false, "bastion": map[string]interface{}{"floatingIP": "172.24.4.57", "ip": "10.6.0.20", "state": "ACTIVE"},
		}, "status")).To(Succeed())
		Expect(k.client.Status().Update(ctx, c)).To(Succeed(), "The CRD should accept the bastion's status")
		Expect(framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "with-bastion"})).To(Equal("172.24.4.57:22"))
		Expect(framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "with-bastion", APIVersion: version})).To(Equal("172.24.4.57:22"))
	})

	It("names the cluster it could not read", func(ctx SpecContext) {
		_, err := framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "missing"})
		Expect(err).To(MatchError(ContainSubstring("reading OpenStackCluster bastion-dialer/missing (infrastructure.cluster.x-k8s.io/" + version + ")")))
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the API server's error is wrapped: %v", err)
	})

	It("says which versions it tried when none is served", func(ctx SpecContext) {
		other := "v1alpha7"
		_, err := framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "any", APIVersion: other})
		Expect(err).To(MatchError(ContainSubstring("the management cluster serves none of infrastructure.cluster.x-k8s.io/v1alpha7")))
	})
}

var _ = Describe("BastionDialer and a CAPO v0.14 OpenStackCluster (v1beta1, CAPO's CRD)", Ordered, Label("envtest"), func() {
	bastionLookupSpecs("v1beta1", func(ctx SpecContext) *kube { return startEnvtestContext(ctx) })
})

var _ = Describe("BastionDialer and a CAPO v1beta2 OpenStackCluster", Ordered, Label("envtest"), func() {
	bastionLookupSpecs("v1beta2", func(ctx SpecContext) *kube {
		return startEnvtestWithCRDs(ctx, filepath.Join("testdata", "capo-v1beta2"))
	})
})
