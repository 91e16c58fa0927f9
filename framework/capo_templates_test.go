package framework_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/yamlprocessor"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/framework"
)

// CAPO's e2e flavors at capoVersion (test/e2e/data/kustomize, rendered as
// its Makefile's e2e-templates target renders them with kustomize) and its
// release templates (templates/). capoMultiAZFlavors spread machines over
// both zones; every other one is single-AZ.
var (
	capoFlavors = []string{
		"capi-v1beta1", "cluster-identity", "default", "flatcar", "flatcar-sysext", "health-monitor",
		"k8s-upgrade", "kcp-remediation", "md-remediation", "multi-az", "multi-network", "no-bastion",
		"topology", "topology-autoscaler", "with-tags", "without-lb",
	}
	capoMultiAZFlavors = map[string]bool{"multi-az": true}
	capoTemplates      = []string{
		"cluster-template.yaml", "cluster-template-capi-v1beta1.yaml", "cluster-template-flatcar.yaml",
		"cluster-template-flatcar-sysext.yaml", "cluster-template-topology.yaml", "cluster-template-without-lb.yaml",
		"clusterclass-dev-test.yaml",
	}
)

var (
	capoDirOnce sync.Once
	capoDirPath string
	capoDirErr  error
)

// capoDir returns CAPO's module directory at capoVersion, downloaded into the
// module cache once per process. The spec fails when the module proxy
// cannot serve it.
func capoDir(ctx context.Context) string {
	GinkgoHelper()
	capoDirOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, moduleLookupTimeout)
		defer cancel()
		capoDirPath, capoDirErr = downloadModule(ctx, capoModule, capoVersion, capoSum)
	})
	Expect(capoDirErr).NotTo(HaveOccurred(), "CAPO's templates at %s are needed to check PinToFailureDomain; `go mod download -json %s@%s` must work", capoVersion, capoModule, capoVersion)
	return capoDirPath
}

// capoTemplate returns a CAPO flavor rendered with kustomize ("flavor:NAME")
// or a release template as it is ("templates/NAME").
func capoTemplate(ctx context.Context, name string) []byte {
	GinkgoHelper()
	dir := capoDir(ctx)
	if flavor, ok := strings.CutPrefix(name, "flavor:"); ok {
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "test", "e2e", "data", "kustomize", flavor))
		Expect(err).NotTo(HaveOccurred(), "kustomize couldn't build CAPO's flavor %s", flavor)
		out, err := res.AsYaml()
		Expect(err).NotTo(HaveOccurred(), "kustomize couldn't render CAPO's flavor %s", flavor)
		return out
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	Expect(err).NotTo(HaveOccurred(), "Couldn't read CAPO's %s", name)
	return b
}

// capoSingleAZ lists the single-AZ templates: every flavor but the
// multi-AZ ones, and every release template.
func capoSingleAZ() []string {
	var names []string
	for _, f := range capoFlavors {
		if !capoMultiAZFlavors[f] {
			names = append(names, "flavor:"+f)
		}
	}
	for _, t := range capoTemplates {
		names = append(names, "templates/"+t)
	}
	return names
}

// zoneKeys are the field names that place machines or volumes in a zone.
var zoneKeys = map[string]bool{
	"controlPlaneAvailabilityZones": true, "controlPlaneOmitAvailabilityZone": true,
	"failureDomain": true, "failureDomains": true, "availabilityZone": true,
}

// zoneFields returns every zone field of an object by path, leaving out
// the load balancer's zone (Octavia's, never pinned) and a ClusterClass's
// variable schemas and patches (checked, not pinned).
func zoneFields(o *unstructured.Unstructured) map[string]interface{} {
	out := map[string]interface{}{}
	var walk func(v interface{}, path string)
	walk = func(v interface{}, path string) {
		switch x := v.(type) {
		case map[string]interface{}:
			for k, child := range x {
				p := strings.TrimPrefix(path+"."+k, ".")
				switch {
				case k == "apiServerLoadBalancer", k == "metadata":
				case o.GetKind() == "ClusterClass" && (p == "spec.variables" || p == "spec.patches"):
				case zoneKeys[k]:
					out[p] = child
				default:
					walk(child, p)
				}
			}
		case []interface{}:
			for i, child := range x {
				walk(child, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(o.Object, "")
	return out
}

// withoutZones returns a copy of an object without its zone fields and the
// objects left empty by their removal.
func withoutZones(o *unstructured.Unstructured) interface{} {
	var strip func(v interface{}) (interface{}, bool)
	strip = func(v interface{}) (interface{}, bool) {
		switch x := v.(type) {
		case map[string]interface{}:
			out := map[string]interface{}{}
			for k, child := range x {
				if zoneKeys[k] {
					continue
				}
				if c, keep := strip(child); keep {
					out[k] = c
				}
			}
			return out, len(out) > 0 || len(x) == 0
		case []interface{}:
			out := make([]interface{}, 0, len(x))
			for _, child := range x {
				c, _ := strip(child)
				out = append(out, c)
			}
			return out, true
		default:
			return v, true
		}
	}
	out, _ := strip(o.DeepCopy().Object)
	return out
}

// expectPinned checks that every zone field of a pinned template names
// zone (a list of it, a volume {from: Name, name: zone}, or a volume that
// follows its machine), that the fields which decide where machines go are
// set, and that nothing but zone fields changed.
func expectPinned(name string, orig, pinned []byte, zone string) {
	GinkgoHelper()
	before, after := parseAll(orig), parseAll(pinned)
	Expect(after).To(HaveLen(len(before)), "%s: pinning keeps every object", name)
	required := 0
	for i, o := range after {
		id := fmt.Sprintf("%s: %s %q", name, o.GetKind(), o.GetName())
		Expect(withoutZones(o)).To(Equal(withoutZones(before[i])), "%s: only zone fields change", id)
		fields := zoneFields(o)
		for path, v := range fields {
			switch v := v.(type) {
			case string:
				Expect(v).To(Equal(zone), "%s: %s", id, path)
			case []interface{}:
				Expect(v).To(Equal([]interface{}{zone}), "%s: %s", id, path)
			case map[string]interface{}:
				if v["from"] != "Machine" {
					Expect(v).To(Equal(volumeAZ(zone)), "%s: %s", id, path)
				}
			default:
				Fail(fmt.Sprintf("%s: %s is %v", id, path, v))
			}
		}
		var must []string
		switch o.GetKind() {
		case "OpenStackCluster":
			must = []string{"spec.controlPlaneAvailabilityZones"}
		case "OpenStackClusterTemplate":
			must = []string{"spec.template.spec.controlPlaneAvailabilityZones"}
		case "MachineDeployment":
			must = []string{"spec.template.spec.failureDomain"}
		case "ClusterClass", "Cluster":
			prefix := "spec.workers.machineDeployments"
			if o.GetKind() == "Cluster" {
				prefix = "spec.topology.workers.machineDeployments"
			}
			mds, _ := field(o, prefix).([]interface{})
			for j := range mds {
				must = append(must, fmt.Sprintf("%s[%d].failureDomain", prefix, j))
			}
		}
		for _, path := range must {
			Expect(fields).To(HaveKey(path), "%s: %s must be pinned", id, path)
			required++
		}
	}
	Expect(required).To(BeNumerically(">", 0), "%s: no field that places machines was found; nothing was checked", name)
}

var _ = Describe("PinToFailureDomain and CAPO's templates", Label("capo"), func() {
	It("knows every flavor and release template of CAPO "+capoVersion, func(ctx SpecContext) {
		dir := capoDir(ctx)
		ents, err := os.ReadDir(filepath.Join(dir, "test", "e2e", "data", "kustomize"))
		Expect(err).NotTo(HaveOccurred())
		var flavors []string
		for _, e := range ents {
			if e.IsDir() && e.Name() != "components" {
				flavors = append(flavors, e.Name())
			}
		}
		Expect(flavors).To(ConsistOf(capoFlavors), "CAPO's flavors changed: update capoFlavors (and capoMultiAZFlavors)")
		tmpls, err := filepath.Glob(filepath.Join(dir, "templates", "*cluster*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for i := range tmpls {
			tmpls[i] = filepath.Base(tmpls[i])
		}
		Expect(tmpls).To(ConsistOf(capoTemplates), "CAPO's release templates changed: update capoTemplates")
	})

	It("refuses the multi-az flavor, naming the control plane's zones", func(ctx SpecContext) {
		tmpl := capoTemplate(ctx, "flavor:multi-az")
		for _, zone := range []string{"testaz1", "${OPENSTACK_FAILURE_DOMAIN}"} {
			out, err := framework.PinToFailureDomain(tmpl, zone)
			Expect(out).To(BeNil())
			Expect(err).To(MatchError(framework.ErrMultiAZ))
			var pe *framework.PinError
			Expect(errors.As(err, &pe)).To(BeTrue(), "got %v", err)
			Expect(pe.Kind).To(Equal("OpenStackCluster"))
			Expect(pe.Name).To(Equal("${CLUSTER_NAME}"))
			Expect(pe.Field).To(Equal("spec.controlPlaneAvailabilityZones"))
			Expect(pe.Problem).To(ContainSubstring("lists 2 zones"))
			Expect(pe.Problem).To(ContainSubstring("${OPENSTACK_FAILURE_DOMAIN_ALT}"))
		}
	})

	It("refuses the multi-az flavor's worker alone, by its MachineDeployment", func(ctx SpecContext) {
		var workers []string
		for _, o := range parseAll(capoTemplate(ctx, "flavor:multi-az")) {
			if o.GetKind() == "MachineDeployment" {
				b, err := yaml.Marshal(o.Object)
				Expect(err).NotTo(HaveOccurred())
				workers = append(workers, string(b))
			}
		}
		Expect(workers).To(HaveLen(1))
		_, err := framework.PinToFailureDomain([]byte(workers[0]), "testaz1")
		Expect(err).To(MatchError(framework.ErrMultiAZ))
		Expect(err).To(MatchError(ContainSubstring(`MachineDeployment "${CLUSTER_NAME}-md-0": spec.template.spec.failureDomain: is ${OPENSTACK_FAILURE_DOMAIN_ALT}, the second zone's variable`)))
	})

	It("pins every single-AZ flavor and release template, changing only zone fields", func(ctx SpecContext) {
		for _, name := range capoSingleAZ() {
			tmpl := capoTemplate(ctx, name)
			for _, zone := range []string{"testaz1", "${OPENSTACK_FAILURE_DOMAIN}"} {
				pinned, err := framework.PinToFailureDomain(tmpl, zone)
				Expect(err).NotTo(HaveOccurred(), "%s pinned to %s", name, zone)
				expectPinned(name, tmpl, pinned, zone)
				again, err := framework.PinToFailureDomain(pinned, zone)
				Expect(err).NotTo(HaveOccurred())
				Expect(string(again)).To(Equal(string(pinned)), "%s: pinning a pinned template changes nothing", name)
			}
		}
	})
})

// capoVariables returns test values for the variables of CAPO's templates:
// CAPO's own e2e configuration's, and values for those its suite computes.
func capoVariables(ctx context.Context, namespace string) map[string]string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join(capoDir(ctx), "test", "e2e", "data", "e2e_conf.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var conf struct {
		Variables map[string]string `json:"variables"`
	}
	Expect(yaml.Unmarshal(b, &conf)).To(Succeed(), "Couldn't read CAPO's e2e configuration's variables")
	vars := conf.Variables
	for k, v := range map[string]string{
		"CLUSTER_NAME":                      namespace,
		"NAMESPACE":                         namespace,
		"CONTROL_PLANE_MACHINE_COUNT":       "1",
		"WORKER_MACHINE_COUNT":              "1",
		"OPENSTACK_CLOUD_YAML_B64":          "Y2xvdWRzOiB7fQo=",
		"OPENSTACK_CLOUD_PROVIDER_CONF_B64": "W0dsb2JhbF0K",
		"OPENSTACK_EXTERNAL_NETWORK_ID":     "6c90b532-7ba0-418a-a276-5ae55060b5b0",
		"CLUSTER_EXTRA_NET_1":               "1d7f7c6e-7b8f-4c3e-9a3e-0b6c1f0f6b01",
		"CLUSTER_EXTRA_NET_2":               "1d7f7c6e-7b8f-4c3e-9a3e-0b6c1f0f6b02",
		"CCM_RESOURCES":                     `{"ccm.yaml": "kind: List"}`, // what the suite's file transformation injects
		"CNI_RESOURCES":                     `{"cni.yaml": "kind: List"}`,
		"DOWNLOAD_E2E_IMAGE":                "false",
	} {
		vars[k] = v
	}
	return vars
}

var _ = Describe("CAPO's templates pinned, against CAPO's, ORC's and Cluster API's CRDs", Ordered, Label("capo", "envtest"), func() {
	var k *kube

	BeforeAll(func(ctx SpecContext) {
		k = startEnvtestContext(ctx)
	})

	// create substitutes the template's variables and creates its objects in
	// a fresh namespace; everything is deleted when the spec ends.
	create := func(ctx context.Context, name string, template []byte) []*unstructured.Unstructured {
		GinkgoHelper()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "capo-"}}
		Expect(k.client.Create(ctx, ns)).To(Succeed(), "Couldn't create a namespace")
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(k.client.Delete(ctx, ns))).To(Succeed(), "Couldn't delete namespace %s", ns.Name)
		})
		vars := capoVariables(ctx, ns.Name)
		var missing []string
		rendered, err := yamlprocessor.NewSimpleProcessor().Process(template, func(v string) (string, error) {
			if val, ok := vars[v]; ok {
				return val, nil
			}
			missing = append(missing, v)
			return "", fmt.Errorf("no test value for variable %s", v)
		})
		sort.Strings(missing)
		Expect(err).NotTo(HaveOccurred(), "%s: no test value for %v; add them to capoVariables", name, missing)
		objs := parseAll(rendered)
		for _, o := range objs {
			o.SetNamespace(ns.Name)
			Expect(k.client.Create(ctx, o)).To(Succeed(), "%s: the API server refused %s %q", name, o.GetKind(), o.GetName())
			DeferCleanup(func(ctx SpecContext) {
				Expect(client.IgnoreNotFound(k.client.Delete(ctx, o))).To(Succeed(), "Couldn't delete %s %q", o.GetKind(), o.GetName())
			})
		}
		return objs
	}

	for _, name := range capoSingleAZ() {
		It("accepts "+name+" pinned to testaz1 and keeps its zones", func(ctx SpecContext) {
			pinned, err := framework.PinToFailureDomain(capoTemplate(ctx, name), "testaz1")
			Expect(err).NotTo(HaveOccurred())
			checked := 0
			for _, o := range create(ctx, name, pinned) {
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(o.GroupVersionKind())
				Expect(k.client.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed(), "Couldn't read back %s %q", o.GetKind(), o.GetName())
				stored := zoneFields(got)
				for path, want := range zoneFields(o) {
					Expect(stored).To(HaveKey(path), "%s %q: the API server dropped %s", o.GetKind(), o.GetName(), path)
					Expect(reflect.DeepEqual(stored[path], want)).To(BeTrue(), "%s %q: %s stored as %v, sent %v", o.GetKind(), o.GetName(), path, stored[path], want)
					checked++
				}
			}
			Expect(checked).To(BeNumerically(">", 0), "%s: no zone field was checked", name)
		})
	}
})
