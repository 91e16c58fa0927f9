package framework

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// MultiAZAnnotation marks a cluster template as deliberately spread over
// several availability zones. When any object of a template carries this
// annotation with the value "true", PinToFailureDomain returns the template
// unchanged.
const MultiAZAnnotation = "stackgate.io/multi-az"

const (
	clusterAPIGroup     = "cluster.x-k8s.io"
	infrastructureGroup = "infrastructure.cluster.x-k8s.io"
)

// placeholderPattern matches clusterctl's envsubst variables (${NAME},
// ${NAME:=default}, ...).
var placeholderPattern = regexp.MustCompile(`\$\{[^}\n]*\}`)

// tokenPrefix and tokenPattern name the plain YAML words that stand in for
// placeholders while a document is parsed and rendered.
const tokenPrefix = "zzstackgatevar"

var tokenPattern = regexp.MustCompile(tokenPrefix + `[0-9]{4}zz`)

// PinError says which field of which object stops a template from being
// pinned to one failure domain.
type PinError struct {
	// Kind and Name identify the object (Name may be a ${VARIABLE}).
	Kind, Name string
	// Field is the path of the offending field, e.g.
	// "spec.template.spec.failureDomain".
	Field string
	// Problem says what is wrong and how to fix it.
	Problem string
}

// Error names the object and the field: `Kind "name": field: problem`.
func (e *PinError) Error() string {
	return fmt.Sprintf("%s %q: %s: %s", e.Kind, e.Name, e.Field, e.Problem)
}

// PinToFailureDomain rewrites a multi-document cluster template so that every
// machine it creates lands in failureDomain:
//
//   - OpenStackCluster spec and OpenStackClusterTemplate spec.template.spec:
//     controlPlaneAvailabilityZones becomes [failureDomain], the bastion's
//     availabilityZone and its volumes are pinned;
//   - MachineDeployment and MachineSet spec.template.spec.failureDomain,
//     Machine spec.failureDomain, MachinePool spec.failureDomains;
//   - Cluster spec.topology.workers.machineDeployments[].failureDomain and
//     machinePools[].failureDomains;
//   - OpenStackMachine spec and OpenStackMachineTemplate spec.template.spec:
//     rootVolume and Volume additionalBlockDevices get the availability zone
//     {from: Name, name: failureDomain}; volumes with {from: Machine} already
//     follow the machine and are kept.
//
// Objects are handled as unstructured data, so any API version works.
// Documents that need no change are returned byte for byte; changed
// documents are re-rendered (keys sorted, comments dropped). clusterctl
// variables such as ${OPENSTACK_FAILURE_DOMAIN} or an unquoted
// ${KUBERNETES_VERSION} are kept as they were. failureDomain may itself be a
// variable (e.g. "${OPENSTACK_FAILURE_DOMAIN}").
//
// A field that is unset, already failureDomain, or only a ${VARIABLE} is set
// to failureDomain. A field naming another zone is an error (*PinError)
// naming the object and the field, as is controlPlaneOmitAvailabilityZone:
// true. A template in which any object has the annotation
// stackgate.io/multi-az: "true" (MultiAZAnnotation) is returned unchanged.
func PinToFailureDomain(template []byte, failureDomain string) ([]byte, error) {
	if failureDomain == "" {
		return nil, errors.New("pin to failure domain: failureDomain is empty; pass an availability zone such as testaz1")
	}
	if strings.ContainsAny(failureDomain, " \t\r\n") {
		return nil, fmt.Errorf("pin to failure domain: failureDomain %q contains white space; availability zone names may not", failureDomain)
	}
	if bytes.Contains(template, []byte(tokenPrefix)) || strings.Contains(failureDomain, tokenPrefix) {
		return nil, fmt.Errorf("pin to failure domain: the template contains the reserved word %q; rename it", tokenPrefix)
	}

	vars := newPlaceholders()
	protected := vars.protect(string(template))
	zone := vars.protect(failureDomain)

	docs := splitDocuments(protected)
	objs := make([]*unstructured.Unstructured, len(docs))
	for i, d := range docs {
		obj, err := parseDocument(d.body)
		if err != nil {
			return nil, fmt.Errorf("pin to failure domain: document %d: %s", i+1, vars.restore(err.Error()))
		}
		if obj != nil && obj.GetAnnotations()[MultiAZAnnotation] == "true" {
			return template, nil
		}
		objs[i] = obj
	}

	p := &pinner{zone: zone, vars: vars}
	var out strings.Builder
	for i, d := range docs {
		out.WriteString(d.separator)
		obj := objs[i]
		if obj == nil {
			out.WriteString(d.body)
			continue
		}
		changed, err := p.pin(obj)
		if err != nil {
			var pe *PinError
			if errors.As(err, &pe) {
				pe.Kind, pe.Name = vars.restore(pe.Kind), vars.restore(pe.Name)
				pe.Problem = vars.restore(pe.Problem)
			}
			return nil, fmt.Errorf("pin to failure domain %q: %w", failureDomain, err)
		}
		if !changed {
			out.WriteString(d.body)
			continue
		}
		js, err := utiljson.Marshal(obj.Object)
		if err != nil {
			return nil, fmt.Errorf("pin to failure domain: document %d: encode: %w", i+1, err)
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return nil, fmt.Errorf("pin to failure domain: document %d: render: %w", i+1, err)
		}
		out.Write(y)
	}
	return []byte(vars.restore(out.String())), nil
}

// placeholders swaps clusterctl variables for plain words while a template is
// parsed, so that "replicas: ${COUNT}" or "[${ZONE}]" stay valid YAML and come
// back exactly as written.
type placeholders struct {
	byText  map[string]string
	byToken map[string]string
}

func newPlaceholders() *placeholders {
	return &placeholders{byText: map[string]string{}, byToken: map[string]string{}}
}

func (p *placeholders) protect(s string) string {
	return placeholderPattern.ReplaceAllStringFunc(s, func(v string) string {
		if t, ok := p.byText[v]; ok {
			return t
		}
		t := fmt.Sprintf("%s%04dzz", tokenPrefix, len(p.byText))
		p.byText[v], p.byToken[t] = t, v
		return t
	})
}

func (p *placeholders) restore(s string) string {
	return tokenPattern.ReplaceAllStringFunc(s, func(t string) string {
		if v, ok := p.byToken[t]; ok {
			return v
		}
		return t
	})
}

// isVariable reports whether s is nothing but one clusterctl variable.
func (p *placeholders) isVariable(s string) bool {
	_, ok := p.byToken[s]
	return ok && tokenPattern.FindString(s) == s
}

type document struct {
	separator string // the "---" line before the body, if any
	body      string
}

func splitDocuments(s string) []document {
	var docs []document
	cur := document{}
	var body strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || strings.HasPrefix(trimmed, "---\t") {
			cur.body = body.String()
			docs = append(docs, cur)
			body.Reset()
			cur = document{separator: line}
			continue
		}
		body.WriteString(line)
	}
	cur.body = body.String()
	return append(docs, cur)
}

// parseDocument returns the object in one YAML document, or nil for empty
// documents and documents that are not objects.
func parseDocument(body string) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON([]byte(body))
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var v interface{}
	if err := utiljson.Unmarshal(js, &v); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	m, ok := v.(map[string]interface{})
	if !ok || len(m) == 0 {
		return nil, nil
	}
	return &unstructured.Unstructured{Object: m}, nil
}

type pinner struct {
	zone string
	vars *placeholders
}

func (p *pinner) pin(obj *unstructured.Unstructured) (bool, error) {
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil {
		return false, nil
	}
	o := object{obj: obj, p: p}
	switch gv.Group + "/" + obj.GetKind() {
	case infrastructureGroup + "/OpenStackCluster":
		o.clusterSpec("spec")
	case infrastructureGroup + "/OpenStackClusterTemplate":
		o.clusterSpec("spec", "template", "spec")
	case infrastructureGroup + "/OpenStackMachine":
		o.machineSpec("spec")
	case infrastructureGroup + "/OpenStackMachineTemplate":
		o.machineSpec("spec", "template", "spec")
	case clusterAPIGroup + "/MachineDeployment", clusterAPIGroup + "/MachineSet":
		o.str(obj.Object, "spec.template.spec.failureDomain", "spec", "template", "spec", "failureDomain")
	case clusterAPIGroup + "/Machine":
		o.str(obj.Object, "spec.failureDomain", "spec", "failureDomain")
	case clusterAPIGroup + "/MachinePool":
		o.list(obj.Object, "spec.failureDomains", "spec", "failureDomains")
	case clusterAPIGroup + "/Cluster":
		o.topology()
	}
	return o.changed, o.err
}

// object pins the fields of one object, remembering the first error.
type object struct {
	obj     *unstructured.Unstructured
	p       *pinner
	changed bool
	err     error
}

func (o *object) fail(field, problem string, args ...interface{}) {
	if o.err == nil {
		o.err = &PinError{Kind: o.obj.GetKind(), Name: o.obj.GetName(), Field: field, Problem: fmt.Sprintf(problem, args...)}
	}
}

func (o *object) conflict(field, value string) {
	o.fail(field, "already pinned to %q; remove it or set it to %q, or mark the template multi-AZ with the annotation %s: \"true\"",
		value, o.p.zone, MultiAZAnnotation)
}

// sub returns the map at path below m, creating it when create is set.
func (o *object) sub(m map[string]interface{}, create bool, path ...string) map[string]interface{} {
	for _, k := range path {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			if !create || m[k] != nil {
				return nil
			}
			next = map[string]interface{}{}
			m[k] = next
			o.changed = true
		}
		m = next
	}
	return m
}

// str pins the string at path below m.
func (o *object) str(m map[string]interface{}, field string, path ...string) {
	parent := o.sub(m, true, path[:len(path)-1]...)
	if parent == nil {
		o.fail(field, "a parent of this field is not an object")
		return
	}
	key := path[len(path)-1]
	cur, isString := parent[key].(string)
	if parent[key] != nil && !isString {
		o.fail(field, "is not a string")
		return
	}
	switch {
	case cur == o.p.zone:
	case cur == "" || o.p.vars.isVariable(cur):
		parent[key] = o.p.zone
		o.changed = true
	default:
		o.conflict(field, cur)
	}
}

// list pins the list of zones at path below m to [zone].
func (o *object) list(m map[string]interface{}, field string, path ...string) {
	parent := o.sub(m, true, path[:len(path)-1]...)
	if parent == nil {
		o.fail(field, "a parent of this field is not an object")
		return
	}
	key := path[len(path)-1]
	var cur []interface{}
	if parent[key] != nil {
		var ok bool
		if cur, ok = parent[key].([]interface{}); !ok {
			o.fail(field, "is not a list")
			return
		}
	}
	for i, v := range cur {
		s, _ := v.(string)
		if s != o.p.zone && !o.p.vars.isVariable(s) {
			o.conflict(fmt.Sprintf("%s[%d]", field, i), fmt.Sprint(v))
			return
		}
	}
	if len(cur) == 1 && cur[0] == o.p.zone {
		return
	}
	parent[key] = []interface{}{o.p.zone}
	o.changed = true
}

// clusterSpec pins an OpenStackCluster spec found at path.
func (o *object) clusterSpec(path ...string) {
	spec := o.sub(o.obj.Object, true, path...)
	prefix := strings.Join(path, ".")
	if spec == nil {
		o.fail(prefix, "is not an object")
		return
	}
	if omit, _ := spec["controlPlaneOmitAvailabilityZone"].(bool); omit {
		o.fail(prefix+".controlPlaneOmitAvailabilityZone",
			"is true, so control plane machines get no availability zone; remove it, or mark the template multi-AZ with the annotation %s: \"true\"",
			MultiAZAnnotation)
		return
	}
	o.list(spec, prefix+".controlPlaneAvailabilityZones", "controlPlaneAvailabilityZones")
	if bastion := o.sub(spec, false, "bastion"); bastion != nil {
		o.str(bastion, prefix+".bastion.availabilityZone", "availabilityZone")
		if o.sub(bastion, false, "spec") != nil {
			o.machineSpec(append(path, "bastion", "spec")...)
		}
	}
}

// machineSpec pins the volumes of an OpenStackMachine spec found at path.
func (o *object) machineSpec(path ...string) {
	spec := o.sub(o.obj.Object, false, path...)
	if spec == nil {
		return
	}
	prefix := strings.Join(path, ".")
	if root := o.sub(spec, false, "rootVolume"); root != nil {
		o.volume(root, prefix+".rootVolume")
	}
	devices, _ := spec["additionalBlockDevices"].([]interface{})
	for i, d := range devices {
		dev, ok := d.(map[string]interface{})
		if !ok {
			continue
		}
		storage := o.sub(dev, false, "storage")
		if storage == nil || storage["type"] != "Volume" {
			continue
		}
		vol := o.sub(storage, true, "volume")
		if vol == nil {
			o.fail(fmt.Sprintf("%s.additionalBlockDevices[%d].storage.volume", prefix, i), "is not an object")
			return
		}
		o.volume(vol, fmt.Sprintf("%s.additionalBlockDevices[%d].storage.volume", prefix, i))
	}
}

// volume pins a CAPO volume's availabilityZone ({from: Name|Machine, name}).
func (o *object) volume(vol map[string]interface{}, field string) {
	field += ".availabilityZone"
	pinned := map[string]interface{}{"from": "Name", "name": o.p.zone}
	az, ok := vol["availabilityZone"].(map[string]interface{})
	if !ok {
		if vol["availabilityZone"] != nil {
			o.fail(field, "is not an object; use {from: Name, name: %s}", o.p.zone)
			return
		}
		vol["availabilityZone"] = pinned
		o.changed = true
		return
	}
	from, _ := az["from"].(string)
	name, _ := az["name"].(string)
	switch {
	case from == "Machine":
		// The volume follows the machine's failure domain, which is pinned.
	case (from == "" || from == "Name") && name == o.p.zone:
	case from == "" || from == "Name" || o.p.vars.isVariable(from):
		if name != "" && !o.p.vars.isVariable(name) {
			o.conflict(field+".name", name)
			return
		}
		vol["availabilityZone"] = pinned
		o.changed = true
	default:
		o.fail(field+".from", "is %q; use Name or Machine", from)
	}
}

// topology pins a Cluster's managed topology.
func (o *object) topology() {
	workers := o.sub(o.obj.Object, false, "spec", "topology", "workers")
	if workers == nil {
		return
	}
	const prefix = "spec.topology.workers"
	mds, _ := workers["machineDeployments"].([]interface{})
	for i, v := range mds {
		if md, ok := v.(map[string]interface{}); ok {
			o.str(md, fmt.Sprintf("%s.machineDeployments[%d].failureDomain", prefix, i), "failureDomain")
		}
	}
	pools, _ := workers["machinePools"].([]interface{})
	for i, v := range pools {
		if mp, ok := v.(map[string]interface{}); ok {
			o.list(mp, fmt.Sprintf("%s.machinePools[%d].failureDomains", prefix, i), "failureDomains")
		}
	}
}
