package framework_test

import (
	"crypto/ed25519"
	"crypto/rand"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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

var _ = Describe("BastionDialer and a real OpenStackCluster", Ordered, func() {
	const ns = "bastion-dialer"

	BeforeAll(func(ctx SpecContext) {
		k := startEnvtest()
		Expect(k.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})

	newCluster := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(framework.OpenStackClusterGVK)
		u.SetNamespace(ns)
		u.SetName(name)
		Expect(unstructured.SetNestedMap(u.Object, map[string]interface{}{"cloudName": "capo-e2e", "name": "capo-e2e-cloud"}, "spec", "identityRef")).To(Succeed())
		return u
	}

	It("says when the cluster has no bastion floating IP yet", func(ctx SpecContext) {
		k := startEnvtest()
		Expect(k.client.Create(ctx, newCluster("no-bastion"))).To(Succeed())
		_, err := framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "no-bastion"})
		Expect(err).To(MatchError(ContainSubstring("OpenStackCluster bastion-dialer/no-bastion has no status.bastion.floatingIP yet")))
	})

	It("reads status.bastion.floatingIP through the API server", func(ctx SpecContext) {
		k := startEnvtest()
		c := newCluster("with-bastion")
		Expect(k.client.Create(ctx, c)).To(Succeed())
		Expect(unstructured.SetNestedMap(c.Object, map[string]interface{}{
			"ready": false, "bastion": map[string]interface{}{"floatingIP": "172.24.4.57", "state": "ACTIVE"},
		}, "status")).To(Succeed())
		Expect(k.client.Status().Update(ctx, c)).To(Succeed(), "The CRD should accept the bastion's status")
		Expect(framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "with-bastion"})).To(Equal("172.24.4.57:22"))
	})

	It("names the cluster it could not read", func(ctx SpecContext) {
		k := startEnvtest()
		_, err := framework.BastionAddress(ctx, framework.BastionDialerInput{Reader: k.client, Namespace: ns, ClusterName: "missing"})
		Expect(err).To(MatchError(ContainSubstring("reading OpenStackCluster bastion-dialer/missing")))
	})
})
