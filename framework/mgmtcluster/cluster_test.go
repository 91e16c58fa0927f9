//go:build unix

package mgmtcluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/framework/mgmtcluster"
	"github.com/stackgate/stackgate/internal/buildscript"
)

// Bounds of the one-time builds (cold: several minutes each on two cores).
const buildTimeout = 60 * time.Minute

// dirs builds (or finds in the cache) the managers and kube-apiserver.
func dirs(ctx context.Context) (capi, assets string) {
	GinkgoHelper()
	capi, err := buildscript.Dir(ctx, "STACKGATE_CAPI_DIR", "../../hack/capi/build.sh", "capi", buildTimeout, GinkgoWriter, "providers.json")
	Expect(err).NotTo(HaveOccurred())
	assets, err = buildscript.Dir(ctx, "KUBEBUILDER_ASSETS", "../../hack/envtest/build.sh", "envtest", buildTimeout, GinkgoWriter, "kube-apiserver", "etcd")
	Expect(err).NotTo(HaveOccurred())
	return capi, assets
}

var _ = Describe("a management cluster of real managers", Ordered, func() {
	var (
		mc     *mgmtcluster.Cluster
		c      client.Client
		logDir string
	)

	BeforeAll(func(ctx SpecContext) {
		capi, assets := dirs(ctx)
		logDir = GinkgoT().TempDir()
		var err error
		mc, err = mgmtcluster.Start(ctx, mgmtcluster.Config{Dir: capi, KubeAPIServerAssets: assets, LogDir: logDir})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(mc.Stop()).To(Succeed()) })
		c, err = client.New(mc.RESTConfig(), client.Options{Scheme: scheme()})
		Expect(err).NotTo(HaveOccurred())
	})

	It("runs every provider's manager, each ready", func() {
		var names []string
		for _, p := range mc.Providers() {
			names = append(names, p.Name)
		}
		Expect(names).To(ConsistOf("core", "bootstrap-kubeadm", "control-plane-kubeadm", "infrastructure-openstack", "orc"))
		Expect(mc.Err()).NotTo(HaveOccurred())
		for name := range mc.PIDs() {
			Expect(filepath.Join(logDir, name+".log")).To(BeAnExistingFile())
		}
	})

	It("installs the CRDs with Cluster API's contract labels", func(ctx SpecContext) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		Expect(c.Get(ctx, client.ObjectKey{Name: "openstackclusters.infrastructure.cluster.x-k8s.io"}, crd)).To(Succeed())
		Expect(crd.Labels).To(HaveKey(HavePrefix("cluster.x-k8s.io/v1beta")), "CAPO's contract label")
		Expect(c.Get(ctx, client.ObjectKey{Name: "images.openstack.k-orc.cloud"}, crd)).To(Succeed(), "ORC's CRDs")
		Expect(c.Get(ctx, client.ObjectKey{Name: "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io"}, crd)).To(Succeed())
	})

	It("records the providers in clusterctl's inventory, as clusterctl init does", func(ctx SpecContext) {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("clusterctl.cluster.x-k8s.io/v1alpha3")
		list.SetKind("ProviderList")
		Expect(c.List(ctx, list)).To(Succeed())
		got := map[string]string{}
		for _, p := range list.Items {
			typ, _, _ := unstructured.NestedString(p.Object, "type")
			version, _, _ := unstructured.NestedString(p.Object, "version")
			got[p.GetNamespace()+"/"+p.GetName()+" "+typ] = version
		}
		Expect(got).To(HaveKeyWithValue("capo-system/infrastructure-openstack InfrastructureProvider", HavePrefix("v0.")))
		Expect(got).To(HaveKey("capi-system/cluster-api CoreProvider"))
		Expect(got).To(HaveKey("capi-kubeadm-bootstrap-system/bootstrap-kubeadm BootstrapProvider"))
		Expect(got).To(HaveKey("capi-kubeadm-control-plane-system/control-plane-kubeadm ControlPlaneProvider"))
		Expect(got).To(HaveLen(4), "ORC is not a clusterctl provider")
	})

	It("converts through Cluster API's conversion webhook on loopback", func(ctx SpecContext) {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName("conversion")
		Expect(c.Create(ctx, ns)).To(Succeed())
		old := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
			"metadata": map[string]interface{}{"name": "c1", "namespace": "conversion"},
			"spec": map[string]interface{}{"paused": true, "infrastructureRef": map[string]interface{}{
				"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "OpenStackCluster", "name": "c1",
			}},
		}}
		Expect(c.Create(ctx, old)).To(Succeed())
		cur := &unstructured.Unstructured{}
		cur.SetAPIVersion("cluster.x-k8s.io/v1beta2")
		cur.SetKind("Cluster")
		Expect(c.Get(ctx, client.ObjectKey{Namespace: "conversion", Name: "c1"}, cur)).To(Succeed())
		ref, _, _ := unstructured.NestedStringMap(cur.Object, "spec", "infrastructureRef")
		Expect(ref).To(HaveKeyWithValue("name", "c1"))
		Expect(ref).NotTo(HaveKey("apiVersion"), "v1beta2's reference has no apiVersion")
		// The same read as v1beta1 converts back; the spec that stops core's
		// manager shows that it is the webhook that converts.
		back := &unstructured.Unstructured{}
		back.SetAPIVersion("cluster.x-k8s.io/v1beta1")
		back.SetKind("Cluster")
		Expect(c.Get(ctx, client.ObjectKey{Namespace: "conversion", Name: "c1"}, back)).To(Succeed())
	})

	It("has CAPO's admission webhook refuse what CAPO refuses", func(ctx SpecContext) {
		tmpl := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "OpenStackMachineTemplate",
			"metadata": map[string]interface{}{"name": "t1", "namespace": "conversion"},
			"spec": map[string]interface{}{"template": map[string]interface{}{"spec": map[string]interface{}{
				"flavor": "m1.small", "image": map[string]interface{}{"filter": map[string]interface{}{"name": "img"}},
			}}},
		}}
		Expect(c.Create(ctx, tmpl)).To(Succeed())
		Expect(unstructured.SetNestedField(tmpl.Object, "m1.medium", "spec", "template", "spec", "flavor")).To(Succeed())
		err := c.Update(ctx, tmpl)
		Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		Expect(err).To(MatchError(ContainSubstring("admission webhook")))
	})

	It("reports a manager that dies, naming it and its last log lines; its webhooks go with it", func(ctx SpecContext) {
		pid := mc.PIDs()["core"]
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		Eventually(mc.Err).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(
			MatchError(And(ContainSubstring("manager core"), ContainSubstring("killed"), ContainSubstring(filepath.Join(logDir, "core.log")))))
		old := &unstructured.Unstructured{}
		old.SetAPIVersion("cluster.x-k8s.io/v1beta1")
		old.SetKind("Cluster")
		err := c.Get(ctx, client.ObjectKey{Namespace: "conversion", Name: "c1"}, old)
		Expect(err).To(MatchError(And(ContainSubstring("conversion webhook"), ContainSubstring("127.0.0.1"))),
			"without core's manager no Cluster converts: the conversion was its webhook's")
	})

	It("stops every process and leaves no temporary directory", func() {
		pids, tmp := mc.PIDs(), mc.TempDir()
		Expect(mc.Stop()).To(Succeed())
		for name, pid := range pids {
			Expect(errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)).To(BeTrue(), "%s (pid %d) is gone", name, pid)
		}
		_, err := os.Stat(tmp)
		Expect(os.IsNotExist(err)).To(BeTrue(), "%s is removed", tmp)
		Expect(mc.Stop()).To(Succeed(), "a second Stop is harmless")
	})
})

var _ = Describe("a management cluster that cannot start", func() {
	It("fails naming the manager and its log, and leaves nothing running", func(ctx SpecContext) {
		capi, assets := dirs(ctx)
		// A feature gate CAPO does not know makes its manager exit at once.
		_, err := mgmtcluster.Start(ctx, mgmtcluster.Config{
			Dir: capi, KubeAPIServerAssets: assets, Providers: []string{"infrastructure-openstack"},
			FeatureGates: map[string][]string{"infrastructure-openstack": {"NoSuchGate=true"}},
			StartTimeout: 2 * time.Minute,
		})
		Expect(err).To(MatchError(And(ContainSubstring("manager infrastructure-openstack"), ContainSubstring("NoSuchGate"))))
	})

	It("refuses a provider that was not built, naming those that were", func(ctx SpecContext) {
		capi, assets := dirs(ctx)
		_, err := mgmtcluster.Start(ctx, mgmtcluster.Config{Dir: capi, KubeAPIServerAssets: assets, Providers: []string{"aws"}})
		Expect(err).To(MatchError(And(ContainSubstring(`Providers: no provider "aws"`), ContainSubstring("infrastructure-openstack"))))
	})
})

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	Expect(apiextensionsv1.AddToScheme(s)).To(Succeed())
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	return s
}
