package devstack

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/utils/v2/openstack/clientconfig"
	yaml "gopkg.in/yaml.v3"
)

// CloudsYAMLError is a clouds.yaml that cannot be read: a YAML syntax error,
// a value of the wrong type, or a required field that is missing.
type CloudsYAMLError struct {
	// Line is the 1-based line of the problem, 0 when unknown.
	Line int
	// Field is the path of the offending field ("clouds.capo-e2e.auth.auth_url"), empty when unknown.
	Field string
	// Problem says what is wrong and how to fix it.
	Problem string
	// Err is the underlying parser error, if any.
	Err error
}

// Error names the clouds.yaml line and field, when known, and the problem.
func (e *CloudsYAMLError) Error() string {
	var b strings.Builder
	b.WriteString("clouds.yaml")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %s", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	return b.String()
}

// Unwrap returns the underlying parser error, or nil.
func (e *CloudsYAMLError) Unwrap() error { return e.Err }

// CloudNotFoundError is a cloud name that the clouds.yaml does not hold.
type CloudNotFoundError struct {
	// Cloud is the name that was asked for.
	Cloud string
	// Known are the clouds the clouds.yaml holds, sorted.
	Known []string
}

// Error names the cloud asked for and the clouds the clouds.yaml holds.
func (e *CloudNotFoundError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("clouds.yaml: cloud %q not found; known clouds: %s", e.Cloud, known)
}

// CloudsYAML is a parsed clouds.yaml. It keeps the document tree so that a
// single cloud can be extracted without losing fields the parser does not know.
type CloudsYAML struct {
	doc    yaml.Node
	clouds map[string]clientconfig.Cloud
}

var yamlLine = regexp.MustCompile(`line (\d+):`)

// ParseCloudsYAML reads a clouds.yaml with gophercloud/utils' clientconfig
// types. Errors name the line and, where it can be found, the field.
func ParseCloudsYAML(data []byte) (*CloudsYAML, error) {
	var c CloudsYAML
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, &CloudsYAMLError{Problem: "the file is empty; it needs a top-level \"clouds:\" mapping"}
	}
	if err := yaml.Unmarshal(data, &c.doc); err != nil {
		return nil, &CloudsYAMLError{Line: lineOf(err), Problem: strings.TrimSpace(yamlLine.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")) + "; fix the YAML syntax", Err: err}
	}
	root := &c.doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &CloudsYAMLError{Line: root.Line, Problem: "the document is not a mapping; it needs a top-level \"clouds:\" mapping"}
	}
	cloudsNode := mapValue(root, "clouds")
	if cloudsNode == nil {
		return nil, &CloudsYAMLError{Line: root.Line, Field: "clouds", Problem: "missing; the file needs a top-level \"clouds:\" mapping of cloud names to settings"}
	}
	if cloudsNode.Kind != yaml.MappingNode {
		return nil, &CloudsYAMLError{Line: cloudsNode.Line, Field: "clouds", Problem: "is not a mapping of cloud names to settings"}
	}
	var parsed clientconfig.Clouds
	if err := root.Decode(&parsed); err != nil {
		line := lineOf(err)
		return nil, &CloudsYAMLError{Line: line, Field: fieldAt(root, line, ""), Problem: typeProblem(err), Err: err}
	}
	c.clouds = parsed.Clouds
	for i := 0; i+1 < len(cloudsNode.Content); i += 2 {
		name, v := cloudsNode.Content[i].Value, cloudsNode.Content[i+1]
		cl := c.clouds[name]
		if cl.Cloud != "" || cl.Profile != "" {
			continue // a profile fills in the rest; clientconfig resolves it
		}
		auth := mapValue(v, "auth")
		if auth == nil || cl.AuthInfo == nil {
			return nil, &CloudsYAMLError{Line: v.Line, Field: "clouds." + name + ".auth", Problem: "missing; give auth_url and credentials (username/password or an application credential)"}
		}
		if cl.AuthInfo.AuthURL == "" {
			return nil, &CloudsYAMLError{Line: auth.Line, Field: "clouds." + name + ".auth.auth_url", Problem: "missing; set it to the keystone endpoint such as http://10.0.3.15/identity"}
		}
	}
	return &c, nil
}

func lineOf(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func typeProblem(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := yamlLine.ReplaceAllString(te.Errors[0], "")
		return strings.TrimSpace(msg) + "; fix the value's type"
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// fieldAt returns the dotted path of the value that starts on line.
func fieldAt(n *yaml.Node, line int, path string) string {
	if line == 0 || n == nil {
		return ""
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if f := fieldAt(v, line, p); f != "" {
				return f
			}
			if k.Line == line || v.Line == line {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			if f := fieldAt(v, line, fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	}
	return ""
}

// Names returns the names of the clouds, sorted.
func (c *CloudsYAML) Names() []string {
	names := make([]string, 0, len(c.clouds))
	for n := range c.clouds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Cloud returns the entry called name, or a *CloudNotFoundError that lists the known clouds.
func (c *CloudsYAML) Cloud(name string) (clientconfig.Cloud, error) {
	cl, ok := c.clouds[name]
	if !ok {
		return clientconfig.Cloud{}, &CloudNotFoundError{Cloud: name, Known: c.Names()}
	}
	return cl, nil
}

// Single returns a clouds.yaml that holds only the cloud called name, with
// every field of the original entry (also those clientconfig does not know).
// If cacertPath is not empty, the entry's cacert is set to it.
func (c *CloudsYAML) Single(name, cacertPath string) ([]byte, error) {
	if _, err := c.Cloud(name); err != nil {
		return nil, err
	}
	root := &c.doc
	if root.Kind == yaml.DocumentNode {
		root = root.Content[0]
	}
	entry := mapValue(mapValue(root, "clouds"), name)
	out := *entry
	out.Content = slices.Clone(entry.Content)
	if cacertPath != "" {
		if v := mapValue(&out, "cacert"); v != nil {
			cp := *v
			cp.Value, cp.Tag, cp.Style = cacertPath, "!!str", 0
			for i := 0; i+1 < len(out.Content); i += 2 {
				if out.Content[i].Value == "cacert" {
					out.Content[i+1] = &cp
				}
			}
		} else {
			out.Content = append(out.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "cacert"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: cacertPath})
		}
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "clouds"},
		{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: name},
			&out,
		}},
	}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("writing clouds.yaml for cloud %q: %w", name, err)
	}
	return b, nil
}

// yamlOpts makes clientconfig read clouds from memory instead of searching
// the file system (and never reads secure.yaml or clouds-public.yaml).
type yamlOpts struct{ clouds map[string]clientconfig.Cloud }

func (o yamlOpts) LoadCloudsYAML() (map[string]clientconfig.Cloud, error) { return o.clouds, nil }
func (o yamlOpts) LoadSecureCloudsYAML() (map[string]clientconfig.Cloud, error) {
	return map[string]clientconfig.Cloud{}, nil
}
func (o yamlOpts) LoadPublicCloudsYAML() (map[string]clientconfig.Cloud, error) {
	return map[string]clientconfig.Cloud{}, nil
}

// ClientOpts returns clientconfig options for the cloud called name that read
// this clouds.yaml from memory.
func (c *CloudsYAML) ClientOpts(name string) (*clientconfig.ClientOpts, error) {
	if _, err := c.Cloud(name); err != nil {
		return nil, err
	}
	return &clientconfig.ClientOpts{Cloud: name, YAMLOpts: yamlOpts{clouds: c.clouds}}, nil
}

// secrets returns every secret value in the clouds.yaml (passwords, tokens,
// application credential secrets), for redaction.
func (c *CloudsYAML) secrets() []string {
	var out []string
	for _, cl := range c.clouds {
		if a := cl.AuthInfo; a != nil {
			for _, s := range []string{a.Password, a.Token, a.ApplicationCredentialSecret} {
				if s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
