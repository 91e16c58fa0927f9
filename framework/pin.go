package framework

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/devstack"
)

// MultiAZAnnotation marks a cluster template as deliberately spread over
// several availability zones. When any object of a template carries this
// annotation with the value "true", PinToFailureDomain returns the template
// unchanged without looking at its zones.
const MultiAZAnnotation = "stackgate.io/multi-az"

// ErrMultiAZ is matched (errors.Is) by the *PinError PinToFailureDomain
// returns when a template's content places machines in another zone than the
// one asked, or in several: a zone list of two or more zones, a variable of
// the second zone (${OPENSTACK_FAILURE_DOMAIN_ALT} or any ${..._ALT} in a
// zone field), another zone's name, or a variable whose zone is not known.
// Such a template is multi-AZ on purpose; use it unpinned.
var ErrMultiAZ = errors.New("the template places machines in other availability zones than the one asked")

const (
	clusterAPIGroup     = "cluster.x-k8s.io"
	infrastructureGroup = "infrastructure.cluster.x-k8s.io"
)

// placeholderPattern matches clusterctl's envsubst variables (${NAME},
// ${NAME:=default}, ...); variableName reads the name out of one.
var (
	placeholderPattern = regexp.MustCompile(`\$\{[^}\n]*\}`)
	variableName       = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)`)
)

// tokenPrefix and tokenPattern name the plain YAML words that stand in for
// placeholders while a document is parsed and rendered.
const tokenPrefix = "zzstackgatevar"

var tokenPattern = regexp.MustCompile(tokenPrefix + `[0-9]{4}zz`)

// zoneFields are the names of the fields that place machines or volumes in an
// availability zone, in Cluster API's and CAPO's APIs. A ClusterClass patch
// or variable that reaches one of them is checked.
var zoneFields = map[string]bool{
	"controlPlaneAvailabilityZones":    true,
	"controlPlaneOmitAvailabilityZone": true,
	"failureDomain":                    true,
	"failureDomains":                   true,
	"availabilityZone":                 true,
}

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
	// MultiAZ is set when the field's content shows a multi-AZ template
	// (see ErrMultiAZ), rather than a field of the wrong shape.
	MultiAZ bool
}

// Error names the object and the field: `Kind "name": field: problem`.
func (e *PinError) Error() string {
	return fmt.Sprintf("%s %q: %s: %s", e.Kind, e.Name, e.Field, e.Problem)
}

// Is reports whether target is ErrMultiAZ and the error is about zones.
func (e *PinError) Is(target error) bool { return target == ErrMultiAZ && e.MultiAZ }

// PinToFailureDomain rewrites a multi-document cluster template so that every
// machine it creates lands in failureDomain, or refuses a template whose
// content is multi-AZ. It pins:
//
//   - OpenStackCluster spec and OpenStackClusterTemplate spec.template.spec:
//     controlPlaneAvailabilityZones becomes [failureDomain], the bastion's
//     availabilityZone and its volumes are pinned (apiServerLoadBalancer's
//     availabilityZone is Octavia's, not nova's, and is left alone);
//   - MachineDeployment and MachineSet spec.template.spec.failureDomain,
//     Machine spec.failureDomain, MachinePool spec.failureDomains;
//   - Cluster spec.topology.workers.machineDeployments[].failureDomain and
//     machinePools[].failureDomains;
//   - ClusterClass spec.workers.machineDeployments[].failureDomain and
//     machinePools[].failureDomains; the ClusterClass's templates
//     (OpenStackClusterTemplate, OpenStackMachineTemplate) are pinned by
//     their own kinds when they are in the template;
//   - OpenStackMachine and OpenStackServer spec, OpenStackMachineTemplate
//     spec.template.spec: rootVolume and Volume additionalBlockDevices get
//     the availability zone {from: Name, name: failureDomain}; volumes with
//     {from: Machine} already follow the machine and are kept;
//     OpenStackServer spec.availabilityZone is pinned too.
//
// The rule for each zone field (a list is checked entry by entry):
//
//   - unset or empty, or failureDomain itself: set to failureDomain;
//   - exactly one clusterctl variable of the asked zone (${NAME} or
//     ${NAME:=default}, ...): set to failureDomain. The asked zone's
//     variable is failureDomain's own when failureDomain is a lone
//     variable such as "${OPENSTACK_FAILURE_DOMAIN}", else
//     OPENSTACK_FAILURE_DOMAIN;
//   - anything else refuses the template with a *PinError naming the
//     object and the field that matches ErrMultiAZ: a list of two or more
//     zones, a variable ending in _ALT or any other variable, another
//     zone's name, or text that merely contains a variable.
//
// Any use of ${OPENSTACK_FAILURE_DOMAIN_ALT} anywhere in the template (a
// string of any field) refuses it the same way, unless it is the asked
// zone's variable. controlPlaneOmitAvailabilityZone: true is refused too.
// ClusterClass patches and variables set fields when the topology is
// reconciled, after this function ran; they are checked, never rewritten:
// a patch that removes a zone field, sets one from a variable or a template
// (valueFrom), or sets one to a value the rule above would refuse, a
// variable default or a Cluster topology variable value holding such a
// value, and an external patch refuse the template.
//
// Objects are handled as unstructured data, so any API version works.
// Documents that need no change are returned byte for byte; changed
// documents are re-rendered (keys sorted, comments dropped). clusterctl
// variables such as ${OPENSTACK_FAILURE_DOMAIN} or an unquoted
// ${KUBERNETES_VERSION} are kept as they were. A template in which any
// object has the annotation stackgate.io/multi-az: "true"
// (MultiAZAnnotation) is returned unchanged.
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
	asked := devstack.VarFailureDomain
	if m := variableName.FindStringSubmatch(failureDomain); m != nil {
		if placeholderPattern.FindString(failureDomain) != failureDomain {
			return nil, fmt.Errorf("pin to failure domain: failureDomain %q mixes a variable with text; pass a zone such as testaz1 or one variable such as ${OPENSTACK_FAILURE_DOMAIN}", failureDomain)
		}
		asked = m[1]
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

	p := &pinner{zone: zone, asked: asked, vars: vars}
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

// variable returns the name of the clusterctl variable s consists of, or ""
// when s is not exactly one variable.
func (p *placeholders) variable(s string) string {
	v, ok := p.byToken[s]
	if !ok {
		return ""
	}
	if m := variableName.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// names returns the names of the variables used in s.
func (p *placeholders) names(s string) []string {
	var out []string
	for _, t := range tokenPattern.FindAllString(s, -1) {
		if m := variableName.FindStringSubmatch(p.byToken[t]); m != nil {
			out = append(out, m[1])
		}
	}
	return out
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
	zone  string // the asked zone, with its variables protected
	asked string // the name of the asked zone's variable
	vars  *placeholders
}

// verdict is what the rule says about one zone value.
type verdict int

const (
	pinIt  verdict = iota // unset, or the asked zone's variable: set it
	keepIt                // already the asked zone
	refuse                // another zone: the template is multi-AZ
)

// judge applies PinToFailureDomain's rule to one zone value and, when it
// refuses, says why.
func (p *pinner) judge(v interface{}) (verdict, string) {
	if v == nil {
		return pinIt, ""
	}
	s, ok := v.(string)
	if !ok {
		return refuse, fmt.Sprintf("is %v, not a zone name", v)
	}
	switch name := p.vars.variable(s); {
	case s == p.zone:
		return keepIt, ""
	case s == "":
		return pinIt, ""
	case name == p.asked:
		return pinIt, ""
	case strings.HasSuffix(name, "_ALT"):
		return refuse, fmt.Sprintf("is %s, the second zone's variable", p.vars.restore(s))
	case name != "":
		return refuse, fmt.Sprintf("is the variable %s, whose zone is not known here (only ${%s} may be pinned)", p.vars.restore(s), p.asked)
	case len(p.vars.names(s)) > 0:
		return refuse, fmt.Sprintf("is %q, text around a variable, whose zone is not known here", p.vars.restore(s))
	default:
		return refuse, fmt.Sprintf("is the zone %q", s)
	}
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
	case infrastructureGroup + "/OpenStackServer":
		o.str(obj.Object, "spec.availabilityZone", "spec", "availabilityZone")
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
	case clusterAPIGroup + "/ClusterClass":
		o.clusterClass()
	}
	if o.err == nil {
		o.secondZone(obj.Object, "")
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

// multiAZ refuses the template for what field says about zones.
func (o *object) multiAZ(field, why string) {
	if o.err == nil {
		o.err = &PinError{
			Kind: o.obj.GetKind(), Name: o.obj.GetName(), Field: field, MultiAZ: true,
			Problem: fmt.Sprintf("%s, and pinning to %s would change where machines go: the template is multi-AZ; use it unpinned (errors.Is(err, framework.ErrMultiAZ)), mark it with the annotation %s: \"true\", or set the field to %s or ${%s}",
				why, o.p.zone, MultiAZAnnotation, o.p.zone, o.p.asked),
		}
	}
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
	if _, isString := parent[key].(string); parent[key] != nil && !isString {
		o.fail(field, "is not a string")
		return
	}
	switch v, why := o.p.judge(parent[key]); v {
	case pinIt:
		parent[key] = o.p.zone
		o.changed = true
	case refuse:
		o.multiAZ(field, why)
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
	if !o.checkList(field, cur) {
		return
	}
	if len(cur) == 1 && cur[0] == o.p.zone {
		return
	}
	parent[key] = []interface{}{o.p.zone}
	o.changed = true
}

// checkList refuses a list of zones that names more than the asked zone.
func (o *object) checkList(field string, zones []interface{}) bool {
	distinct := map[string]bool{}
	var names []string
	firstRefused, why := -1, ""
	for i, v := range zones {
		verdict, reason := o.p.judge(v)
		text := o.p.vars.restore(fmt.Sprint(v))
		if verdict != refuse {
			text = o.p.vars.restore(o.p.zone)
		} else if firstRefused < 0 {
			firstRefused, why = i, reason
		}
		if !distinct[text] {
			distinct[text] = true
			names = append(names, text)
		}
	}
	switch {
	case len(names) > 1:
		o.multiAZ(field, fmt.Sprintf("lists %d zones (%s)", len(names), strings.Join(names, ", ")))
		return false
	case firstRefused >= 0:
		o.multiAZ(fmt.Sprintf("%s[%d]", field, firstRefused), why)
		return false
	}
	return true
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
	switch {
	case from == "Machine":
		// The volume follows the machine's failure domain, which is pinned.
		return
	case from != "" && from != "Name" && o.p.vars.variable(from) == "":
		o.fail(field+".from", "is %q; use Name or Machine", from)
		return
	}
	switch verdict, why := o.p.judge(az["name"]); verdict {
	case refuse:
		o.multiAZ(field+".name", why)
	case pinIt:
		vol["availabilityZone"] = pinned
		o.changed = true
	case keepIt:
		if from != "" && from != "Name" { // a variable
			vol["availabilityZone"] = pinned
			o.changed = true
		}
	}
}

// topology pins a Cluster's managed topology and checks its variables.
func (o *object) topology() {
	topo := o.sub(o.obj.Object, false, "spec", "topology")
	if topo == nil {
		return
	}
	const prefix = "spec.topology"
	o.checkVariables(topo["variables"], prefix+".variables")
	workers := o.sub(topo, false, "workers")
	if workers == nil {
		return
	}
	mds, _ := workers["machineDeployments"].([]interface{})
	for i, v := range mds {
		if md, ok := v.(map[string]interface{}); ok {
			p := fmt.Sprintf("%s.workers.machineDeployments[%d]", prefix, i)
			o.str(md, p+".failureDomain", "failureDomain")
			if vars := o.sub(md, false, "variables"); vars != nil {
				o.checkVariables(vars["overrides"], p+".variables.overrides")
			}
		}
	}
	pools, _ := workers["machinePools"].([]interface{})
	for i, v := range pools {
		if mp, ok := v.(map[string]interface{}); ok {
			p := fmt.Sprintf("%s.workers.machinePools[%d]", prefix, i)
			o.list(mp, p+".failureDomains", "failureDomains")
			if vars := o.sub(mp, false, "variables"); vars != nil {
				o.checkVariables(vars["overrides"], p+".variables.overrides")
			}
		}
	}
}

// checkVariables checks the values of a Cluster's topology variables
// ([{name, value}]) for zones.
func (o *object) checkVariables(v interface{}, field string) {
	list, _ := v.([]interface{})
	for i, item := range list {
		if m, ok := item.(map[string]interface{}); ok {
			o.checkValue(fmt.Sprintf("%s[%d].value", field, i), "", m["value"])
		}
	}
}

// clusterClass pins a ClusterClass's worker classes and checks what its
// patches and variables would set when the topology is reconciled.
func (o *object) clusterClass() {
	spec := o.sub(o.obj.Object, false, "spec")
	if spec == nil {
		return
	}
	if workers := o.sub(spec, false, "workers"); workers != nil {
		mds, _ := workers["machineDeployments"].([]interface{})
		for i, v := range mds {
			if md, ok := v.(map[string]interface{}); ok {
				o.str(md, fmt.Sprintf("spec.workers.machineDeployments[%d].failureDomain", i), "failureDomain")
			}
		}
		pools, _ := workers["machinePools"].([]interface{})
		for i, v := range pools {
			if mp, ok := v.(map[string]interface{}); ok {
				o.list(mp, fmt.Sprintf("spec.workers.machinePools[%d].failureDomains", i), "failureDomains")
			}
		}
	}
	variables, _ := spec["variables"].([]interface{})
	for i, v := range variables {
		if m, ok := v.(map[string]interface{}); ok {
			o.checkSchemaDefaults(fmt.Sprintf("spec.variables[%d].schema.openAPIV3Schema", i), "", o.sub(m, false, "schema", "openAPIV3Schema"))
		}
	}
	patches, _ := spec["patches"].([]interface{})
	for i, v := range patches {
		patch, ok := v.(map[string]interface{})
		if !ok {
			continue
		}
		field := fmt.Sprintf("spec.patches[%d]", i)
		if patch["external"] != nil {
			o.multiAZ(field+".external", "is an external patch, which may set zones that cannot be seen here")
			return
		}
		defs, _ := patch["definitions"].([]interface{})
		for j, d := range defs {
			def, _ := d.(map[string]interface{})
			ops, _ := def["jsonPatches"].([]interface{})
			for k, op := range ops {
				if m, ok := op.(map[string]interface{}); ok {
					o.checkJSONPatch(fmt.Sprintf("%s.definitions[%d].jsonPatches[%d]", field, j, k), m)
				}
			}
		}
	}
}

// checkJSONPatch checks one ClusterClass JSON patch operation.
func (o *object) checkJSONPatch(field string, op map[string]interface{}) {
	path, _ := op["path"].(string)
	segments := strings.Split(strings.TrimPrefix(path, "/"), "/")
	zoneKey := ""
	for i, s := range segments {
		if zoneFields[s] {
			zoneKey = strings.Join(segments[i:], "/")
			break
		}
	}
	kind, _ := op["op"].(string)
	switch {
	case zoneKey != "" && kind == "remove":
		o.multiAZ(field, fmt.Sprintf("removes %s when the topology is reconciled, undoing the pinned zone", path))
	case zoneKey != "" && op["valueFrom"] != nil:
		o.multiAZ(field+".valueFrom", fmt.Sprintf("sets %s when the topology is reconciled from a value that cannot be seen here", path))
	case zoneKey != "":
		o.checkValue(field+".value", zoneKey, op["value"])
	default:
		o.checkValue(field+".value", "", op["value"])
	}
}

// checkValue checks a value a ClusterClass patch or variable sets: key is the
// zone field it is set at ("" when not one, "a/b" when below one).
func (o *object) checkValue(field, key string, v interface{}) {
	if o.err != nil {
		return
	}
	top := strings.SplitN(key, "/", 2)[0]
	switch {
	case top == "controlPlaneOmitAvailabilityZone":
		if b, _ := v.(bool); b {
			o.fail(field, "sets controlPlaneOmitAvailabilityZone: true, so control plane machines get no availability zone; remove it, or mark the template multi-AZ with the annotation %s: \"true\"", MultiAZAnnotation)
		}
		return
	case key != "" && strings.Contains(key, "/"):
		// Below a zone field: an entry of a list (".../-", ".../0") or a
		// volume's {from, name}.
		last := key[strings.LastIndex(key, "/")+1:]
		if last == "from" {
			return
		}
		if verdict, why := o.p.judge(v); verdict == refuse {
			o.multiAZ(field, why)
		}
		return
	case key != "":
		switch x := v.(type) {
		case []interface{}:
			o.checkList(field, x)
		case map[string]interface{}:
			if x["from"] == "Machine" {
				return
			}
			if verdict, why := o.p.judge(x["name"]); verdict == refuse {
				o.multiAZ(field+".name", why)
			}
		default:
			if verdict, why := o.p.judge(v); verdict == refuse {
				o.multiAZ(field, why)
			}
		}
		return
	}
	switch x := v.(type) {
	case map[string]interface{}:
		for _, k := range sortedKeys(x) {
			child := k
			if !zoneFields[k] {
				child = ""
			}
			o.checkValue(field+"."+k, child, x[k])
		}
	case []interface{}:
		for i, item := range x {
			o.checkValue(fmt.Sprintf("%s[%d]", field, i), "", item)
		}
	}
}

// checkSchemaDefaults checks the defaults a ClusterClass variable's schema
// gives zone fields.
func (o *object) checkSchemaDefaults(field, key string, s map[string]interface{}) {
	if s == nil || o.err != nil {
		return
	}
	if d, ok := s["default"]; ok {
		o.checkValue(field+".default", key, d)
	}
	props, _ := s["properties"].(map[string]interface{})
	for _, k := range sortedKeys(props) {
		child, _ := props[k].(map[string]interface{})
		ck := ""
		if zoneFields[k] {
			ck = k
		}
		o.checkSchemaDefaults(field+".properties."+k, ck, child)
	}
	if items, ok := s["items"].(map[string]interface{}); ok {
		o.checkSchemaDefaults(field+".items", "", items)
	}
}

// secondZone refuses any string below v that uses the second zone's
// variable (OPENSTACK_FAILURE_DOMAIN_ALT), unless that is the asked one.
func (o *object) secondZone(v interface{}, field string) {
	if o.err != nil || o.p.asked == devstack.VarFailureDomainAlt {
		return
	}
	switch x := v.(type) {
	case map[string]interface{}:
		for _, k := range sortedKeys(x) {
			o.secondZone(x[k], strings.TrimPrefix(field+"."+k, "."))
		}
	case []interface{}:
		for i, item := range x {
			o.secondZone(item, fmt.Sprintf("%s[%d]", field, i))
		}
	case string:
		for _, name := range o.p.vars.names(x) {
			if name == devstack.VarFailureDomainAlt {
				o.multiAZ(field, fmt.Sprintf("uses ${%s}, the second zone's variable", name))
				return
			}
		}
	}
}

func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
