package devstack

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"
)

// Names of the template variables, as CAPO's cluster templates and e2e
// configuration spell them.
const (
	VarCloud                     = "OPENSTACK_CLOUD"
	VarCloudYAMLB64              = "OPENSTACK_CLOUD_YAML_B64"
	VarCloudCACertB64            = "OPENSTACK_CLOUD_CACERT_B64"
	VarCloudProviderConfB64      = "OPENSTACK_CLOUD_PROVIDER_CONF_B64"
	VarFailureDomain             = "OPENSTACK_FAILURE_DOMAIN"
	VarFailureDomainAlt          = "OPENSTACK_FAILURE_DOMAIN_ALT"
	VarVolumeTypeAlt             = "OPENSTACK_VOLUME_TYPE_ALT"
	VarExternalNetworkID         = "OPENSTACK_EXTERNAL_NETWORK_ID"
	VarControlPlaneMachineFlavor = "OPENSTACK_CONTROL_PLANE_MACHINE_FLAVOR"
	VarNodeMachineFlavor         = "OPENSTACK_NODE_MACHINE_FLAVOR"
	VarBastionMachineFlavor      = "OPENSTACK_BASTION_MACHINE_FLAVOR"
	VarBastionMachineFlavorAlt   = "OPENSTACK_BASTION_MACHINE_FLAVOR_ALT"
	VarImageName                 = "OPENSTACK_IMAGE_NAME"
	VarBastionImageName          = "OPENSTACK_BASTION_IMAGE_NAME"
	VarDNSNameservers            = "OPENSTACK_DNS_NAMESERVERS"
	VarSSHKeyName                = "OPENSTACK_SSH_KEY_NAME"
)

// DefaultCACertPath is where CAPO's templates mount the CA bundle on the
// cluster's machines; the cloud provider ini's ca-file points to it.
const DefaultCACertPath = "/etc/certs/cacert"

// Variables are the template variables of an environment: the Go equivalent
// of CAPO's templates/env.rc. String masks the values that carry secrets.
type Variables map[string]string

// secretVars hold credentials (a clouds.yaml or a cloud provider ini).
var secretVars = map[string]bool{VarCloudYAMLB64: true, VarCloudProviderConfB64: true}

// String prints the variables sorted by name, one NAME=value per line, with
// the values that carry credentials masked.
func (v Variables) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(v)) {
		val := v[k]
		if secretVars[k] || looksSecret(k) {
			val = fmt.Sprintf("<masked, %d bytes>", len(val))
		}
		fmt.Fprintf(&b, "%s=%s\n", k, val)
	}
	return b.String()
}

// Format makes %v and %s print String, so no verb prints secrets.
func (v Variables) Format(f fmt.State, _ rune) { fmt.Fprint(f, v.String()) }

// GoString makes %#v print String too.
func (v Variables) GoString() string { return v.String() }

// looksSecret applies the artifacts' rule (IsSecretName) to the variables
// a caller adds, except to the names of things such as OPENSTACK_SSH_KEY_NAME.
func looksSecret(name string) bool {
	return IsSecretName(name) && !strings.HasSuffix(strings.ToUpper(name), "_NAME")
}

// VarsOption changes how variables are computed.
type VarsOption func(*varsOptions)

type varsOptions struct {
	cloud         string
	caCertPath    string
	externalNetID string
	vars          map[string]string
}

// WithVarsCloud selects the clouds.yaml entry (default Config.Cloud).
func WithVarsCloud(name string) VarsOption { return func(o *varsOptions) { o.cloud = name } }

// WithCACertPath sets the ca-file path written into the cloud provider ini
// and the clouds.yaml's cacert (default DefaultCACertPath).
func WithCACertPath(path string) VarsOption { return func(o *varsOptions) { o.caCertPath = path } }

// WithExternalNetworkID sets OPENSTACK_EXTERNAL_NETWORK_ID instead of looking it up.
func WithExternalNetworkID(id string) VarsOption {
	return func(o *varsOptions) { o.externalNetID = id }
}

// WithVar sets or overrides one variable (flavors, images, DNS nameservers...).
func WithVar(name, value string) VarsOption {
	return func(o *varsOptions) { o.vars[name] = value }
}

// defaultVars are CAPO's e2e defaults for what the environment does not decide.
func defaultVars(cfg Config) map[string]string {
	return map[string]string{
		VarFailureDomain:             cfg.FailureDomain,
		VarFailureDomainAlt:          cfg.FailureDomainAlt,
		VarVolumeTypeAlt:             cfg.VolumeTypeAlt,
		VarControlPlaneMachineFlavor: "m1.medium",
		VarNodeMachineFlavor:         "m1.small",
		VarBastionMachineFlavor:      "m1.tiny",
		VarBastionMachineFlavorAlt:   "m1.tiny.alt",
		VarImageName:                 "ubuntu-2404-kube-v1.33.1",
		VarBastionImageName:          "cirros-0.6.1-x86_64-disk",
		VarDNSNameservers:            "8.8.8.8",
		VarSSHKeyName:                "cluster-api-provider-openstack-sigs-k8s-io",
	}
}

// VariablesFromCloudsYAML computes the variables that depend only on a
// clouds.yaml, its CA bundle (may be empty) and cfg; OPENSTACK_EXTERNAL_NETWORK_ID
// is set only when given with WithExternalNetworkID.
func VariablesFromCloudsYAML(cloudsYAML, caCert []byte, cfg Config, opts ...VarsOption) (Variables, error) {
	cfg = cfg.WithDefaults()
	o := varsOptions{cloud: cfg.Cloud, caCertPath: DefaultCACertPath, vars: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	cy, err := ParseCloudsYAML(cloudsYAML)
	if err != nil {
		return nil, err
	}
	cloud, err := cy.Cloud(o.cloud)
	if err != nil {
		return nil, err
	}
	caPath := ""
	if len(caCert) > 0 {
		caPath = o.caCertPath
	}
	single, err := cy.Single(o.cloud, caPath)
	if err != nil {
		return nil, err
	}
	v := Variables(defaultVars(cfg))
	v[VarCloud] = o.cloud
	v[VarCloudYAMLB64] = base64.StdEncoding.EncodeToString(single)
	// env.rc encodes an empty CA as a lone newline; templates expect a value.
	ca := caCert
	if len(ca) == 0 {
		ca = []byte("\n")
	}
	v[VarCloudCACertB64] = base64.StdEncoding.EncodeToString(ca)
	ini, err := providerConf(o.cloud, cloud.AuthInfo, cloud.RegionName, caPath)
	if err != nil {
		return nil, err
	}
	v[VarCloudProviderConfB64] = base64.StdEncoding.EncodeToString([]byte(ini))
	if o.externalNetID != "" {
		v[VarExternalNetworkID] = o.externalNetID
	}
	maps.Copy(v, o.vars)
	return v, nil
}

// providerConf renders the [Global] section the OpenStack cloud provider reads.
func providerConf(name string, a *clientconfig.AuthInfo, region, caPath string) (string, error) {
	if a == nil {
		return "", &CloudsYAMLError{Field: "clouds." + name + ".auth", Problem: "missing; the cloud provider needs auth_url and credentials"}
	}
	var b strings.Builder
	b.WriteString("[Global]\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(v))
		}
	}
	line("auth-url", a.AuthURL)
	if a.ApplicationCredentialID != "" || a.ApplicationCredentialName != "" {
		line("application-credential-id", a.ApplicationCredentialID)
		line("application-credential-name", a.ApplicationCredentialName)
		line("application-credential-secret", a.ApplicationCredentialSecret)
	} else {
		if a.Username == "" && a.UserID == "" {
			return "", &CloudsYAMLError{Field: "clouds." + name + ".auth.username", Problem: "missing; the cloud provider needs a username (or an application credential)"}
		}
		line("username", a.Username)
		line("user-id", a.UserID)
		line("password", a.Password)
		line("tenant-id", a.ProjectID)
		line("tenant-name", a.ProjectName)
		domain := a.UserDomainName
		if domain == "" {
			domain = a.DomainName
		}
		line("domain-name", domain)
		domainID := a.UserDomainID
		if domainID == "" {
			domainID = a.DomainID
		}
		line("domain-id", domainID)
	}
	line("ca-file", caPath)
	line("region", region)
	return b.String(), nil
}

// Variables computes the template variables of the environment for
// Config.Cloud (or the cloud given with WithVarsCloud), looking up the
// external network's ID through the admin cloud.
func (e *Environment) Variables(ctx context.Context, opts ...VarsOption) (Variables, error) {
	probe := varsOptions{vars: map[string]string{}}
	for _, opt := range opts {
		opt(&probe)
	}
	if probe.externalNetID == "" {
		id, err := e.externalNetworkID(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(slices.Clone(opts), WithExternalNetworkID(id))
	}
	return VariablesFromCloudsYAML(e.CloudsYAML, e.CACert, e.Config, opts...)
}

func (e *Environment) externalNetworkID(ctx context.Context) (string, error) {
	c, err := e.Clients(ctx, e.Config.CloudAdmin)
	if err != nil {
		return "", err
	}
	iTrue := true
	pages, err := networks.List(c.Network, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &iTrue}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("looking up the external network: %w", err)
	}
	nets, err := networks.ExtractNetworks(pages)
	if err != nil {
		return "", fmt.Errorf("looking up the external network: %w", err)
	}
	var names []string
	for _, n := range nets {
		if n.Name == "public" {
			return n.ID, nil
		}
		names = append(names, n.Name)
	}
	if len(nets) == 1 {
		return nets[0].ID, nil
	}
	return "", fmt.Errorf("looking up the external network: no external network called \"public\" (external networks: %v); pass WithExternalNetworkID", names)
}
