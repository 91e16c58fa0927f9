package framework_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

// providerDeployment is a Deployment as clusterctl installs a provider's
// manager: labelled with framework.ProviderLabel unless provider is empty.
func providerDeployment(ns, name, provider string, env ...corev1.EnvVar) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "registry.invalid/manager:e2e", Env: env}}},
			},
		},
	}
	if provider != "" {
		d.Labels = map[string]string{framework.ProviderLabel: provider}
	}
	return d
}

// createInNamespace creates a namespace named after prefix and the objects
// in it, and deletes them after the spec.
func createInNamespace(ctx context.Context, k *kube, prefix string, objs ...client.Object) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	Expect(k.client.Create(ctx, ns)).To(Succeed())
	for _, o := range objs {
		o.SetNamespace(ns.Name)
		Expect(k.client.Create(ctx, o)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(k.client.Delete(ctx, o))).To(Succeed()) })
	}
	return ns.Name
}

var _ = Describe("ProxyProviders", Label("envtest"), func() {
	var (
		k  *kube
		ds *framework.DevStack
	)
	BeforeEach(func(ctx SpecContext) {
		k = startEnvtestContext(ctx)
		keepEnv(framework.VarCloudYAMLFile, devstack.VarFailureDomain)
		c := startTestController()
		ds = framework.UseSetupData(ctx, setupDataFor(c.addr, c.hostKey.PublicKey(), c.userKey))
		DeferCleanup(ds.Close)
	})

	It("serves the tunnel's proxy where the nodes reach this host and rolls it out to every provider's Deployment", func(ctx SpecContext) {
		// A kind node is a container; here the node's address is loopback,
		// so the route to it starts at 127.0.0.1.
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "kind-control-plane-"}}
		Expect(k.client.Create(ctx, node)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(k.client.Delete(ctx, node)).To(Succeed()) })
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		Expect(k.client.Status().Update(ctx, node)).To(Succeed())

		capo := providerDeployment("", "capo-controller-manager", "infrastructure-openstack",
			corev1.EnvVar{Name: "HTTPS_PROXY", Value: "http://stale:3128"}, corev1.EnvVar{Name: "EXP_FLAG", Value: "true"})
		other := providerDeployment("", "unrelated", "")
		createInNamespace(ctx, k, "proxy", capo, other)

		proxied := make(chan string, 1)
		go func() {
			defer GinkgoRecover()
			proxied <- framework.ProxyProviders(ctx, framework.ProxyProvidersInput{DevStack: ds, Client: k.client}, "1m", "100ms")
		}()
		// The Deployment controller's part: roll the new template out.
		Eventually(func(g Gomega) {
			g.Expect(k.client.Get(ctx, client.ObjectKeyFromObject(capo), capo)).To(Succeed())
			g.Expect(capo.Spec.Template.Spec.Containers[0].Env).To(ContainElement(HaveField("Name", "NO_PROXY")))
		}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
		Consistently(proxied).WithTimeout(300*time.Millisecond).ShouldNot(Receive(), "ProxyProviders returned before the Deployment rolled out")
		capo.Status = appsv1.DeploymentStatus{ObservedGeneration: capo.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
		Expect(k.client.Status().Update(ctx, capo)).To(Succeed())
		var addr string
		Eventually(proxied).WithTimeout(30 * time.Second).Should(Receive(&addr))

		host, _, err := net.SplitHostPort(addr)
		Expect(err).NotTo(HaveOccurred())
		Expect(host).To(Equal("127.0.0.1"))
		Expect(k.client.Get(ctx, client.ObjectKeyFromObject(capo), capo)).To(Succeed())
		env := map[string][]string{}
		for _, v := range capo.Spec.Template.Spec.Containers[0].Env {
			env[v.Name] = append(env[v.Name], v.Value)
		}
		Expect(env).To(HaveKeyWithValue("HTTPS_PROXY", []string{"http://" + addr}), "the stale proxy is replaced, not repeated")
		Expect(env).To(HaveKeyWithValue("HTTP_PROXY", []string{"http://" + addr}))
		Expect(env).To(HaveKeyWithValue("NO_PROXY", []string{"localhost,127.0.0.1,::1,10.96.0.0/12,10.244.0.0/16,.svc,.cluster.local"}))
		Expect(env).To(HaveKeyWithValue("EXP_FLAG", []string{"true"}), "the container's own variables stay")
		Expect(k.client.Get(ctx, client.ObjectKeyFromObject(other), other)).To(Succeed())
		Expect(other.Spec.Template.Spec.Containers[0].Env).To(BeEmpty(), "a Deployment that is no provider's is left alone")

		// A pod's request through the proxy: an address outside the
		// tunnel's routes is dialled directly.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "through the proxy") }))
		DeferCleanup(srv.Close)
		proxyURL, err := url.Parse(env["HTTP_PROXY"][0])
		Expect(err).NotTo(HaveOccurred())
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 30 * time.Second}).Get(srv.URL)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(body)).To(Equal("through the proxy"))
	})

	It("fails naming the Deployment that does not roll out, and what it showed", func(ctx SpecContext) {
		stuck := providerDeployment("", "capi-controller-manager", "cluster-api")
		ns := createInNamespace(ctx, k, "stuck", stuck)
		err := InterceptGomegaFailure(func() {
			framework.ProxyProviders(ctx, framework.ProxyProvidersInput{DevStack: ds, Client: k.client, ListenAddress: "127.0.0.1:0"}, "2s", "100ms")
		})
		Expect(err).To(MatchError(ContainSubstring("did not roll out")))
		Expect(err).To(MatchError(ContainSubstring(ns + "/capi-controller-manager: generation 2 not observed yet")))
	})

	It("asks for ListenAddress when the cluster has no node to find the route by", func(ctx SpecContext) {
		var nodes corev1.NodeList
		Expect(k.client.List(ctx, &nodes)).To(Succeed())
		if len(nodes.Items) > 0 {
			Skip("another spec's node is still there")
		}
		err := InterceptGomegaFailure(func() {
			framework.ProxyProviders(ctx, framework.ProxyProvidersInput{DevStack: ds, Client: k.client}, "2s", "100ms")
		})
		Expect(err).To(MatchError(And(ContainSubstring("set ListenAddress"), ContainSubstring("has an InternalIP"))))
	})
})
