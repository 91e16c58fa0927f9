package framework_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/yamlprocessor"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/data"
	"github.com/stackgate/stackgate/framework"
)

const zone = "testaz1"

// parseAll decodes every object of a multi-document template.
func parseAll(b []byte) []*unstructured.Unstructured {
	GinkgoHelper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		Expect(err).NotTo(HaveOccurred(), "Couldn't decode the template:\n%s", b)
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// find returns the object of kind and name in a template.
func find(b []byte, kind, name string) *unstructured.Unstructured {
	GinkgoHelper()
	for _, o := range parseAll(b) {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	Fail(fmt.Sprintf("no %s %q in the template:\n%s", kind, name, b))
	return nil
}

// field reads a value at a dotted path; "[i]" indexes lists.
func field(o *unstructured.Unstructured, path string) interface{} {
	GinkgoHelper()
	var cur interface{} = o.Object
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.Index(part, "["); i >= 0 {
			key = part[:i]
			_, err := fmt.Sscanf(part[i:], "[%d]", &idx)
			Expect(err).NotTo(HaveOccurred(), "bad path %q", path)
		}
		m, ok := cur.(map[string]interface{})
		if !ok {
			return nil
		}
		cur = m[key]
		if idx >= 0 {
			l, ok := cur.([]interface{})
			if !ok || idx >= len(l) {
				return nil
			}
			cur = l[idx]
		}
	}
	return cur
}

func volumeAZ(name string) map[string]interface{} {
	return map[string]interface{}{"from": "Name", "name": name}
}

const machineDeployment = `apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: md-0
spec:
  clusterName: ${CLUSTER_NAME}
  replicas: ${WORKER_MACHINE_COUNT}
  template:
    spec:
      clusterName: ${CLUSTER_NAME}
      version: ${KUBERNETES_VERSION}
%s`

func md(failureDomainLine string) string { return fmt.Sprintf(machineDeployment, failureDomainLine) }

const kubeadmConfigTemplate = `# comments and layout of untouched documents are kept
apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
kind: KubeadmConfigTemplate
metadata:
  name: md-0
spec:
  template:
    spec:
      joinConfiguration:
        nodeRegistration:
          name: '{{ local_hostname }}'
          kubeletExtraArgs: [{name: cloud-provider, value: external}]
`

const openStackCluster = `apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: OpenStackCluster
metadata:
  name: ${CLUSTER_NAME}
spec:
  identityRef: {cloudName: "${OPENSTACK_CLOUD}", name: cloud-config}
  managedSubnets:
  - cidr: 10.6.0.0/24
    dnsNameservers: [${OPENSTACK_DNS_NAMESERVERS}]
%s`

func osc(extra string) string { return fmt.Sprintf(openStackCluster, extra) }

const openStackMachineTemplate = `apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: OpenStackMachineTemplate
metadata:
  name: md-0
spec:
  template:
    spec:
      flavor: ${OPENSTACK_NODE_MACHINE_FLAVOR}
      image: {filter: {name: "${OPENSTACK_IMAGE_NAME}"}}
%s`

func osmt(extra string) string { return fmt.Sprintf(openStackMachineTemplate, extra) }

const topologyCluster = `apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: ${CLUSTER_NAME}
spec:
  topology:
    classRef: {name: dev-test}
    version: ${KUBERNETES_VERSION}
    workers:
      machineDeployments:
      - {class: default-worker, name: md-0}
      - {class: default-worker, name: md-1, failureDomain: %s}
      machinePools:
      - {class: default-pool, name: mp-0, failureDomains: [%s]}
`

func join(docs ...string) []byte { return []byte(strings.Join(docs, "---\n")) }

// clusterClass is a ClusterClass with a worker class (extra goes into it), a
// bastion patch (extraPatches are more of its JSON patches) and a variable
// (extraProps are more properties of its schema).
func clusterClass(extra, extraPatches string, extraProps ...string) string {
	return `apiVersion: cluster.x-k8s.io/v1beta2
kind: ClusterClass
metadata:
  name: dev-test
spec:
  workers:
    machineDeployments:
    - class: default-worker
` + extra + `    machinePools:
    - class: default-pool
  variables:
  - name: bastion
    required: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          enabled: {type: boolean, default: false}
` + strings.Join(extraProps, "") + `  patches:
  - name: bastion
    definitions:
    - selector: {apiVersion: infrastructure.cluster.x-k8s.io/v1beta1, kind: OpenStackClusterTemplate, matchResources: {infrastructureCluster: true}}
      jsonPatches:
      - {op: add, path: /spec/template/spec/bastion, valueFrom: {variable: bastion}}
` + extraPatches
}

var _ = Describe("PinToFailureDomain", func() {
	DescribeTable("pins every machine to one zone",
		func(template []byte, check func(out []byte)) {
			out, err := framework.PinToFailureDomain(template, zone)
			Expect(err).NotTo(HaveOccurred())
			check(out)
			again, err := framework.PinToFailureDomain(out, zone)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(again)).To(Equal(string(out)), "pinning a pinned template changes nothing")
		},
		Entry("MachineDeployment without a failure domain; other documents byte for byte",
			join(kubeadmConfigTemplate, md("")),
			func(out []byte) {
				Expect(string(out)).To(HavePrefix(kubeadmConfigTemplate + "---\n"))
				o := find(out, "MachineDeployment", "md-0")
				Expect(field(o, "spec.template.spec.failureDomain")).To(Equal(zone))
				Expect(field(o, "spec.template.spec.version")).To(Equal("${KUBERNETES_VERSION}"))
				Expect(string(out)).To(ContainSubstring("replicas: ${WORKER_MACHINE_COUNT}\n"), "numeric variables stay unquoted")
				Expect(string(out)).To(ContainSubstring("version: ${KUBERNETES_VERSION}\n"))
			}),
		Entry("MachineDeployment whose failure domain is a variable",
			join(md("      failureDomain: ${OPENSTACK_FAILURE_DOMAIN}\n")),
			func(out []byte) {
				Expect(field(find(out, "MachineDeployment", "md-0"), "spec.template.spec.failureDomain")).To(Equal(zone))
			}),
		Entry("MachineDeployment already in the zone is returned byte for byte",
			join(md("      failureDomain: testaz1 # kept\n")),
			func(out []byte) {
				Expect(string(out)).To(Equal(md("      failureDomain: testaz1 # kept\n")))
			}),
		Entry("MachineSet and Machine",
			[]byte("apiVersion: cluster.x-k8s.io/v1beta2\nkind: MachineSet\nmetadata: {name: ms}\nspec: {template: {spec: {clusterName: c}}}\n---\n"+
				"apiVersion: cluster.x-k8s.io/v1beta2\nkind: Machine\nmetadata: {name: m}\nspec: {clusterName: c}\n"),
			func(out []byte) {
				Expect(field(find(out, "MachineSet", "ms"), "spec.template.spec.failureDomain")).To(Equal(zone))
				Expect(field(find(out, "Machine", "m"), "spec.failureDomain")).To(Equal(zone))
			}),
		Entry("OpenStackCluster without zones, with a bastion",
			join(osc("  bastion:\n    spec:\n      flavor: m1.tiny\n      rootVolume: {sizeGiB: 1}\n")),
			func(out []byte) {
				o := find(out, "OpenStackCluster", "${CLUSTER_NAME}")
				Expect(field(o, "spec.controlPlaneAvailabilityZones")).To(Equal([]interface{}{zone}))
				Expect(field(o, "spec.bastion.availabilityZone")).To(Equal(zone))
				Expect(field(o, "spec.bastion.spec.rootVolume.availabilityZone")).To(Equal(volumeAZ(zone)))
				Expect(field(o, "spec.managedSubnets[0].dnsNameservers")).To(Equal([]interface{}{"${OPENSTACK_DNS_NAMESERVERS}"}))
				Expect(field(o, "spec.identityRef.cloudName")).To(Equal("${OPENSTACK_CLOUD}"))
			}),
		Entry("OpenStackCluster listing the zone and its variable",
			join(osc("  controlPlaneAvailabilityZones: [testaz1, \"${OPENSTACK_FAILURE_DOMAIN:=testaz1}\"]\n")),
			func(out []byte) {
				Expect(field(find(out, "OpenStackCluster", "${CLUSTER_NAME}"), "spec.controlPlaneAvailabilityZones")).To(Equal([]interface{}{zone}))
			}),
		Entry("OpenStackServer zone and root volume",
			[]byte("apiVersion: infrastructure.cluster.x-k8s.io/v1alpha1\nkind: OpenStackServer\nmetadata: {name: s}\n"+
				"spec:\n  flavor: f\n  rootVolume: {sizeGiB: 1}\n"),
			func(out []byte) {
				o := find(out, "OpenStackServer", "s")
				Expect(field(o, "spec.availabilityZone")).To(Equal(zone))
				Expect(field(o, "spec.rootVolume.availabilityZone")).To(Equal(volumeAZ(zone)))
			}),
		Entry("ClusterClass worker classes; patches and variables that set no zone are kept",
			[]byte(clusterClass("", "")),
			func(out []byte) {
				o := find(out, "ClusterClass", "dev-test")
				Expect(field(o, "spec.workers.machineDeployments[0].failureDomain")).To(Equal(zone))
				Expect(field(o, "spec.workers.machinePools[0].failureDomains")).To(Equal([]interface{}{zone}))
				Expect(field(o, "spec.patches[0].definitions[0].jsonPatches[0].path")).To(Equal("/spec/template/spec/bastion"))
			}),
		Entry("ClusterClass patches that set the asked zone",
			[]byte(clusterClass("", "      - {op: add, path: /spec/template/spec/controlPlaneAvailabilityZones, value: [\"${OPENSTACK_FAILURE_DOMAIN}\"]}\n"+
				"      - {op: add, path: /spec/template/spec/rootVolume/availabilityZone, value: {from: Machine}}\n")),
			func(out []byte) {
				Expect(field(find(out, "ClusterClass", "dev-test"), "spec.workers.machineDeployments[0].failureDomain")).To(Equal(zone))
			}),
		Entry("OpenStackClusterTemplate, under spec.template.spec",
			[]byte("apiVersion: infrastructure.cluster.x-k8s.io/v1beta1\nkind: OpenStackClusterTemplate\nmetadata: {name: t}\n"+
				"spec:\n  template:\n    spec:\n      identityRef: {cloudName: c, name: n}\n"),
			func(out []byte) {
				o := find(out, "OpenStackClusterTemplate", "t")
				Expect(field(o, "spec.template.spec.controlPlaneAvailabilityZones")).To(Equal([]interface{}{zone}))
				Expect(field(o, "spec.controlPlaneAvailabilityZones")).To(BeNil())
			}),
		Entry("OpenStackMachineTemplate root volume and Volume block devices; Local ones untouched",
			join(osmt("      rootVolume:\n        sizeGiB: 25\n        type: ${OPENSTACK_VOLUME_TYPE_ALT}\n"+
				"      additionalBlockDevices:\n"+
				"      - {name: data, sizeGiB: 1, storage: {type: Volume}}\n"+
				"      - {name: logs, sizeGiB: 1, storage: {type: Volume, volume: {type: fast, availabilityZone: {name: ${OPENSTACK_FAILURE_DOMAIN}}}}}\n"+
				"      - {name: scratch, sizeGiB: 1, storage: {type: Local}}\n")),
			func(out []byte) {
				o := find(out, "OpenStackMachineTemplate", "md-0")
				Expect(field(o, "spec.template.spec.rootVolume.availabilityZone")).To(Equal(volumeAZ(zone)))
				Expect(field(o, "spec.template.spec.rootVolume.type")).To(Equal("${OPENSTACK_VOLUME_TYPE_ALT}"))
				Expect(field(o, "spec.template.spec.additionalBlockDevices[0].storage.volume.availabilityZone")).To(Equal(volumeAZ(zone)))
				Expect(field(o, "spec.template.spec.additionalBlockDevices[1].storage.volume.availabilityZone")).To(Equal(volumeAZ(zone)))
				Expect(field(o, "spec.template.spec.additionalBlockDevices[1].storage.volume.type")).To(Equal("fast"))
				Expect(field(o, "spec.template.spec.additionalBlockDevices[2].storage")).To(Equal(map[string]interface{}{"type": "Local"}))
			}),
		Entry("OpenStackMachine volumes that follow the machine are kept",
			[]byte("apiVersion: infrastructure.cluster.x-k8s.io/v1beta1\nkind: OpenStackMachine\nmetadata: {name: m}\n"+
				"spec:\n  flavor: f\n  rootVolume: {sizeGiB: 1, availabilityZone: {from: Machine}}\n"),
			func(out []byte) {
				Expect(field(find(out, "OpenStackMachine", "m"), "spec.rootVolume.availabilityZone")).To(Equal(map[string]interface{}{"from": "Machine"}))
			}),
		Entry("OpenStackMachineTemplate without volumes is returned byte for byte",
			join(osmt("")),
			func(out []byte) { Expect(string(out)).To(Equal(osmt(""))) }),
		Entry("Cluster topology machine deployments and machine pools",
			join(fmt.Sprintf(topologyCluster, "${OPENSTACK_FAILURE_DOMAIN}", "${OPENSTACK_FAILURE_DOMAIN}")),
			func(out []byte) {
				o := find(out, "Cluster", "${CLUSTER_NAME}")
				Expect(field(o, "spec.topology.workers.machineDeployments[0].failureDomain")).To(Equal(zone))
				Expect(field(o, "spec.topology.workers.machineDeployments[1].failureDomain")).To(Equal(zone))
				Expect(field(o, "spec.topology.workers.machinePools[0].failureDomains")).To(Equal([]interface{}{zone}))
				Expect(field(o, "spec.topology.version")).To(Equal("${KUBERNETES_VERSION}"))
			}),
		Entry("objects of other API groups are left alone",
			[]byte("apiVersion: example.com/v1\nkind: MachineDeployment\nmetadata: {name: other}\nspec: {}\n"),
			func(out []byte) {
				Expect(string(out)).To(Equal("apiVersion: example.com/v1\nkind: MachineDeployment\nmetadata: {name: other}\nspec: {}\n"))
			}),
		Entry("empty documents and a leading separator are kept",
			[]byte("---\n# nothing\n---\n"+md("")),
			func(out []byte) {
				Expect(string(out)).To(HavePrefix("---\n# nothing\n---\n"))
				Expect(field(find(out, "MachineDeployment", "md-0"), "spec.template.spec.failureDomain")).To(Equal(zone))
			}),
	)

	It("pins to a variable when given one, and to the second zone's variable when asked", func() {
		out, err := framework.PinToFailureDomain(join(md("      failureDomain: ${OPENSTACK_FAILURE_DOMAIN:=testaz1}\n"), osc("")), "${OPENSTACK_FAILURE_DOMAIN}")
		Expect(err).NotTo(HaveOccurred())
		Expect(field(find(out, "MachineDeployment", "md-0"), "spec.template.spec.failureDomain")).To(Equal("${OPENSTACK_FAILURE_DOMAIN}"))
		Expect(string(out)).To(ContainSubstring("controlPlaneAvailabilityZones:\n  - ${OPENSTACK_FAILURE_DOMAIN}\n"))

		out, err = framework.PinToFailureDomain(join(md("      failureDomain: ${OPENSTACK_FAILURE_DOMAIN_ALT}\n"), osc("")), "${OPENSTACK_FAILURE_DOMAIN_ALT}")
		Expect(err).NotTo(HaveOccurred())
		Expect(field(find(out, "MachineDeployment", "md-0"), "spec.template.spec.failureDomain")).To(Equal("${OPENSTACK_FAILURE_DOMAIN_ALT}"))
		Expect(field(find(out, "OpenStackCluster", "${CLUSTER_NAME}"), "spec.controlPlaneAvailabilityZones")).To(Equal([]interface{}{"${OPENSTACK_FAILURE_DOMAIN_ALT}"}))

		_, err = framework.PinToFailureDomain(join(md("      failureDomain: ${OPENSTACK_FAILURE_DOMAIN}\n")), "${OPENSTACK_FAILURE_DOMAIN_ALT}")
		Expect(err).To(MatchError(framework.ErrMultiAZ), "another zone's variable is refused")
	})

	DescribeTable("refuses multi-AZ content, naming the object and the field",
		func(template []byte, kind, name, fieldPath string) {
			out, err := framework.PinToFailureDomain(template, zone)
			Expect(out).To(BeNil())
			var pe *framework.PinError
			Expect(errors.As(err, &pe)).To(BeTrue(), "got %v", err)
			Expect(pe.Kind).To(Equal(kind))
			Expect(pe.Name).To(Equal(name))
			Expect(pe.Field).To(Equal(fieldPath))
			Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("%s %q: %s", kind, name, fieldPath)))
			Expect(err.Error()).To(ContainSubstring(framework.MultiAZAnnotation), "the error says how to mark the template instead")
			Expect(errors.Is(err, framework.ErrMultiAZ)).To(Equal(fieldPath != "spec.controlPlaneOmitAvailabilityZone"),
				"zone content is ErrMultiAZ; omitting the zone is not")
		},
		Entry("MachineDeployment in testaz2", join(kubeadmConfigTemplate, md("      failureDomain: testaz2\n")),
			"MachineDeployment", "md-0", "spec.template.spec.failureDomain"),
		Entry("OpenStackCluster listing testaz2", join(osc("  controlPlaneAvailabilityZones: [testaz1, testaz2]\n")),
			"OpenStackCluster", "${CLUSTER_NAME}", "spec.controlPlaneAvailabilityZones"),
		Entry("OpenStackCluster listing the second zone's variable", join(osc("  controlPlaneAvailabilityZones: [testaz1, ${OPENSTACK_FAILURE_DOMAIN_ALT}]\n")),
			"OpenStackCluster", "${CLUSTER_NAME}", "spec.controlPlaneAvailabilityZones"),
		Entry("OpenStackCluster listing only testaz2", join(osc("  controlPlaneAvailabilityZones: [testaz2]\n")),
			"OpenStackCluster", "${CLUSTER_NAME}", "spec.controlPlaneAvailabilityZones[0]"),
		Entry("MachineDeployment in the second zone's variable", join(md("      failureDomain: ${OPENSTACK_FAILURE_DOMAIN_ALT}\n")),
			"MachineDeployment", "md-0", "spec.template.spec.failureDomain"),
		Entry("MachineDeployment in any other _ALT variable", join(md("      failureDomain: ${MY_ZONE_ALT}\n")),
			"MachineDeployment", "md-0", "spec.template.spec.failureDomain"),
		Entry("MachineDeployment in a variable whose zone is not known", join(md("      failureDomain: ${MY_ZONE}\n")),
			"MachineDeployment", "md-0", "spec.template.spec.failureDomain"),
		Entry("MachineDeployment in text around the asked variable", join(md("      failureDomain: ${OPENSTACK_FAILURE_DOMAIN}-b\n")),
			"MachineDeployment", "md-0", "spec.template.spec.failureDomain"),
		Entry("MachinePool over two zones",
			[]byte("apiVersion: cluster.x-k8s.io/v1beta2\nkind: MachinePool\nmetadata: {name: mp}\nspec: {failureDomains: [testaz1, testaz2]}\n"),
			"MachinePool", "mp", "spec.failureDomains"),
		Entry("the second zone's variable in a field that is not a zone",
			join(md(""), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {zones: \"${OPENSTACK_FAILURE_DOMAIN},${OPENSTACK_FAILURE_DOMAIN_ALT}\"}\n"),
			"ConfigMap", "conf", "data.zones"),
		Entry("a volume in the second zone's variable",
			join(osmt("      rootVolume: {sizeGiB: 1, availabilityZone: {name: \"${OPENSTACK_FAILURE_DOMAIN_ALT}\"}}\n")),
			"OpenStackMachineTemplate", "md-0", "spec.template.spec.rootVolume.availabilityZone.name"),
		Entry("ClusterClass worker class in testaz2", []byte(clusterClass("      failureDomain: testaz2\n", "")),
			"ClusterClass", "dev-test", "spec.workers.machineDeployments[0].failureDomain"),
		Entry("ClusterClass patch setting the zones from a variable",
			[]byte(clusterClass("", "      - {op: add, path: /spec/template/spec/controlPlaneAvailabilityZones, valueFrom: {variable: zones}}\n")),
			"ClusterClass", "dev-test", "spec.patches[0].definitions[0].jsonPatches[1].valueFrom"),
		Entry("ClusterClass patch adding the second zone",
			[]byte(clusterClass("", "      - {op: add, path: /spec/template/spec/controlPlaneAvailabilityZones/-, value: \"${OPENSTACK_FAILURE_DOMAIN_ALT}\"}\n")),
			"ClusterClass", "dev-test", "spec.patches[0].definitions[0].jsonPatches[1].value"),
		Entry("ClusterClass patch removing the zones",
			[]byte(clusterClass("", "      - {op: remove, path: /spec/template/spec/controlPlaneAvailabilityZones}\n")),
			"ClusterClass", "dev-test", "spec.patches[0].definitions[0].jsonPatches[1]"),
		Entry("ClusterClass patch setting a bastion in testaz2",
			[]byte(clusterClass("", "      - {op: add, path: /spec/template/spec/bastion, value: {enabled: true, availabilityZone: testaz2}}\n")),
			"ClusterClass", "dev-test", "spec.patches[0].definitions[0].jsonPatches[1].value.availabilityZone"),
		Entry("ClusterClass variable whose default is testaz2",
			[]byte(clusterClass("", "", "          availabilityZone: {type: string, default: testaz2}\n")),
			"ClusterClass", "dev-test", "spec.variables[0].schema.openAPIV3Schema.properties.availabilityZone.default"),
		Entry("ClusterClass external patch",
			[]byte(strings.Replace(clusterClass("", ""), "  - name: bastion\n    definitions:", "  - name: ext\n    external: {generatePatchesExtension: gen}\n  - name: bastion\n    definitions:", 1)),
			"ClusterClass", "dev-test", "spec.patches[0].external"),
		Entry("topology variable with a bastion in testaz2",
			[]byte(strings.Replace(fmt.Sprintf(topologyCluster, "testaz1", "testaz1"), "    workers:\n", "    variables:\n    - {name: bastion, value: {enabled: true, availabilityZone: testaz2}}\n    workers:\n", 1)),
			"Cluster", "${CLUSTER_NAME}", "spec.topology.variables[0].value.availabilityZone"),
		Entry("OpenStackCluster omitting the zone", join(osc("  controlPlaneOmitAvailabilityZone: true\n")),
			"OpenStackCluster", "${CLUSTER_NAME}", "spec.controlPlaneOmitAvailabilityZone"),
		Entry("OpenStackCluster bastion in testaz2", join(osc("  bastion: {availabilityZone: testaz2}\n")),
			"OpenStackCluster", "${CLUSTER_NAME}", "spec.bastion.availabilityZone"),
		Entry("root volume in testaz2", join(osmt("      rootVolume: {sizeGiB: 1, availabilityZone: {from: Name, name: testaz2}}\n")),
			"OpenStackMachineTemplate", "md-0", "spec.template.spec.rootVolume.availabilityZone.name"),
		Entry("block device volume in testaz2",
			join(osmt("      additionalBlockDevices: [{name: d, sizeGiB: 1, storage: {type: Volume, volume: {availabilityZone: {name: testaz2}}}}]\n")),
			"OpenStackMachineTemplate", "md-0", "spec.template.spec.additionalBlockDevices[0].storage.volume.availabilityZone.name"),
		Entry("topology machine deployment in testaz2", join(fmt.Sprintf(topologyCluster, "testaz2", "testaz1")),
			"Cluster", "${CLUSTER_NAME}", "spec.topology.workers.machineDeployments[1].failureDomain"),
		Entry("topology machine pool in testaz2", join(fmt.Sprintf(topologyCluster, "testaz1", "testaz2")),
			"Cluster", "${CLUSTER_NAME}", "spec.topology.workers.machinePools[0].failureDomains[0]"),
	)

	DescribeTable("returns templates marked multi-AZ unchanged",
		func(template []byte) {
			out, err := framework.PinToFailureDomain(template, zone)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(out)).To(Equal(string(template)))
		},
		Entry("annotation on a later object, conflicts elsewhere", join(md("      failureDomain: testaz2\n"),
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: marker\n  annotations: {stackgate.io/multi-az: \"true\"}\n")),
		Entry("the embedded multi-AZ template", mustRead(data.ClusterMultiAZTemplate)),
	)

	DescribeTable("rejects bad input with a clear error",
		func(template []byte, failureDomain, want string) {
			_, err := framework.PinToFailureDomain(template, failureDomain)
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("empty failure domain", join(md("")), "", "failureDomain is empty"),
		Entry("white space in the failure domain", join(md("")), "test az1", "contains white space"),
		Entry("invalid YAML names the document", join(md(""), "kind: [unclosed\n"), zone, "document 2: invalid YAML"),
		Entry("failure domain of the wrong type", join(md("      failureDomain: {a: b}\n")), zone, "spec.template.spec.failureDomain: is not a string"),
	)
})

func mustRead(name string) []byte {
	b, err := data.E2E.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// pinnedFields lists, per kind, the fields PinToFailureDomain sets and the
// value each must read back as from the API server.
func pinnedFields(o *unstructured.Unstructured) map[string]interface{} {
	GinkgoHelper()
	want := map[string]interface{}{}
	machineSpec := func(prefix string) {
		if field(o, prefix+".rootVolume") != nil {
			if field(o, prefix+".rootVolume.availabilityZone.from") == "Machine" {
				want[prefix+".rootVolume.availabilityZone"] = map[string]interface{}{"from": "Machine"}
			} else {
				want[prefix+".rootVolume.availabilityZone"] = volumeAZ(zone)
			}
		}
		devices, _ := field(o, prefix+".additionalBlockDevices").([]interface{})
		for i := range devices {
			p := fmt.Sprintf("%s.additionalBlockDevices[%d].storage", prefix, i)
			if field(o, p+".type") == "Volume" {
				want[p+".volume.availabilityZone"] = volumeAZ(zone)
			}
		}
	}
	switch o.GetKind() {
	case "OpenStackCluster":
		want["spec.controlPlaneAvailabilityZones"] = []interface{}{zone}
		if field(o, "spec.bastion") != nil {
			want["spec.bastion.availabilityZone"] = zone
			machineSpec("spec.bastion.spec")
		}
	case "OpenStackClusterTemplate":
		want["spec.template.spec.controlPlaneAvailabilityZones"] = []interface{}{zone}
	case "OpenStackMachineTemplate":
		machineSpec("spec.template.spec")
	case "MachineDeployment":
		want["spec.template.spec.failureDomain"] = zone
	case "Cluster":
		mds, _ := field(o, "spec.topology.workers.machineDeployments").([]interface{})
		for i := range mds {
			want[fmt.Sprintf("spec.topology.workers.machineDeployments[%d].failureDomain", i)] = zone
		}
	}
	return want
}

var _ = Describe("PinToFailureDomain against the Cluster API and CAPO CRDs", Ordered, Label("envtest"), func() {
	var (
		k    *kube
		vars map[string]string
	)

	BeforeAll(func(ctx SpecContext) {
		k = startEnvtestContext(ctx)
		conf, err := framework.LoadE2EConfig(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		vars = map[string]string{}
		for name, v := range conf.Variables {
			vars[name] = v
		}
		vars["CLUSTER_CLASS_NAME"] = "dev-test"
		vars["OPENSTACK_CLOUD_YAML_B64"] = base64.StdEncoding.EncodeToString([]byte("clouds: {}\n"))
		vars["OPENSTACK_CLOUD_CACERT_B64"] = base64.StdEncoding.EncodeToString([]byte("\n"))
	})

	// create renders the template with test values and creates its objects
	// in a fresh namespace; everything is deleted when the spec ends.
	create := func(ctx context.Context, template []byte) []*unstructured.Unstructured {
		GinkgoHelper()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "pin-"}}
		Expect(k.client.Create(ctx, ns)).To(Succeed(), "Couldn't create a namespace")
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(k.client.Delete(ctx, ns))).To(Succeed(), "Couldn't delete namespace %s", ns.Name)
		})
		rendered, err := yamlprocessor.NewSimpleProcessor().Process(template, func(name string) (string, error) {
			if name == "CLUSTER_NAME" {
				return ns.Name, nil
			}
			if v, ok := vars[name]; ok {
				return v, nil
			}
			return "", fmt.Errorf("no test value for variable %s", name)
		})
		Expect(err).NotTo(HaveOccurred(), "Couldn't substitute the template's variables")
		objs := parseAll(rendered)
		for _, o := range objs {
			o.SetNamespace(ns.Name)
			Expect(k.client.Create(ctx, o)).To(Succeed(), "The API server refused %s %q", o.GetKind(), o.GetName())
			DeferCleanup(func(ctx SpecContext) {
				Expect(client.IgnoreNotFound(k.client.Delete(ctx, o))).To(Succeed(), "Couldn't delete %s %q", o.GetKind(), o.GetName())
			})
		}
		return objs
	}

	DescribeTable("the API server accepts the pinned objects and keeps the zone",
		func(ctx SpecContext, name string, minFields int) {
			pinned, err := framework.PinToFailureDomain(mustRead(name), zone)
			Expect(err).NotTo(HaveOccurred())
			checked := 0
			for _, o := range create(ctx, pinned) {
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(o.GroupVersionKind())
				Expect(k.client.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed(), "Couldn't read back %s %q", o.GetKind(), o.GetName())
				for path, want := range pinnedFields(o) {
					Expect(field(got, path)).To(Equal(want), "%s %q: %s as stored by the API server", o.GetKind(), o.GetName(), path)
					checked++
				}
			}
			Expect(checked).To(BeNumerically(">=", minFields), "pinned fields checked in %s", name)
		},
		Entry("CAPO cluster template", data.ClusterTemplate, 6),
		Entry("ClusterClass topology template", data.ClusterTopologyTemplate, 4),
	)

	It("accepts the multi-AZ template as it is", func(ctx SpecContext) {
		tmpl := mustRead(data.ClusterMultiAZTemplate)
		out, err := framework.PinToFailureDomain(tmpl, zone)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(tmpl))
		for _, o := range create(ctx, out) {
			if o.GetKind() != "OpenStackCluster" {
				continue
			}
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(o.GroupVersionKind())
			Expect(k.client.Get(ctx, client.ObjectKeyFromObject(o), got)).To(Succeed())
			Expect(field(got, "spec.controlPlaneAvailabilityZones")).To(Equal([]interface{}{"testaz1", "testaz2"}))
		}
	})
})
