package devstack

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
)

// Defaults of CAPO's CI environment; DefaultConfig returns them as a Config.
const (
	DefaultName             = "capo-e2e"
	DefaultFailureDomain    = "testaz1"
	DefaultFailureDomainAlt = "testaz2"
	DefaultVolumeTypeAlt    = "test-volume-type"
	DefaultCloud            = "capo-e2e"
	DefaultCloudAdmin       = "capo-e2e-admin"
)

// Default addresses of CAPO's CI environment.
var (
	DefaultPrivateNetworkCIDR = netip.MustParsePrefix("10.0.3.0/24")
	DefaultControllerIP       = netip.MustParseAddr("10.0.3.15")
	DefaultWorkerIP           = netip.MustParseAddr("10.0.3.16")
	DefaultFloatingRange      = netip.MustParsePrefix("172.24.4.0/24")
	// PodmanSlirpCIDR is the network podman's slirp4netns gives rootless
	// containers; a DevStack network overlapping it cannot be reached from kind
	// under podman, so Validate refuses it.
	PodmanSlirpCIDR = netip.MustParsePrefix("10.0.2.0/24")
)

// Config describes the two-node DevStack every host builds: a controller in
// FailureDomain and a worker in FailureDomainAlt on PrivateNetworkCIDR, with
// floating IPs from FloatingRange. The zero value of every field means its
// default; call WithDefaults (or Validate, which applies them) before use.
type Config struct {
	// Name is the environment's name and the prefix of what hosts create (CLUSTER_NAME).
	Name string `json:"name,omitempty"`
	// PrivateNetworkCIDR is the network the controller and the worker share (PRIVATE_NETWORK_CIDR).
	PrivateNetworkCIDR netip.Prefix `json:"privateNetworkCIDR,omitzero"`
	// ControllerIP is the controller's address on PrivateNetworkCIDR; every API endpoint uses it (CONTROLLER_IP).
	ControllerIP netip.Addr `json:"controllerIP,omitzero"`
	// WorkerIP is the worker's address on PrivateNetworkCIDR (WORKER_IP).
	WorkerIP netip.Addr `json:"workerIP,omitzero"`
	// FloatingRange is the subnet of the external network "public" (FLOATING_RANGE).
	FloatingRange netip.Prefix `json:"floatingRange,omitzero"`
	// FailureDomain is the controller's availability zone and nova's default zone (OPENSTACK_FAILURE_DOMAIN).
	FailureDomain string `json:"failureDomain,omitempty"`
	// FailureDomainAlt is the worker's availability zone (OPENSTACK_FAILURE_DOMAIN_ALT).
	FailureDomainAlt string `json:"failureDomainAlt,omitempty"`
	// VolumeTypeAlt is the cinder volume type CAPO's specs use (OPENSTACK_VOLUME_TYPE_ALT).
	VolumeTypeAlt string `json:"volumeTypeAlt,omitempty"`
	// Cloud is the clouds.yaml entry of the demo user and project (OPENSTACK_CLOUD).
	Cloud string `json:"cloud,omitempty"`
	// CloudAdmin is the clouds.yaml entry of the admin user (OPENSTACK_CLOUD_ADMIN).
	CloudAdmin string `json:"cloudAdmin,omitempty"`
}

// DefaultConfig returns the configuration of CAPO's CI environment.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns a copy of c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	set(&c.Name, DefaultName)
	set(&c.FailureDomain, DefaultFailureDomain)
	set(&c.FailureDomainAlt, DefaultFailureDomainAlt)
	set(&c.VolumeTypeAlt, DefaultVolumeTypeAlt)
	set(&c.Cloud, DefaultCloud)
	set(&c.CloudAdmin, DefaultCloudAdmin)
	if !c.PrivateNetworkCIDR.IsValid() {
		c.PrivateNetworkCIDR = DefaultPrivateNetworkCIDR
	}
	if !c.ControllerIP.IsValid() {
		c.ControllerIP = DefaultControllerIP
	}
	if !c.WorkerIP.IsValid() {
		c.WorkerIP = DefaultWorkerIP
	}
	if !c.FloatingRange.IsValid() {
		c.FloatingRange = DefaultFloatingRange
	}
	return c
}

// ConfigFromEnv reads the variables CAPO's scripts use (CLUSTER_NAME,
// PRIVATE_NETWORK_CIDR, CONTROLLER_IP, WORKER_IP, FLOATING_RANGE,
// OPENSTACK_FAILURE_DOMAIN, OPENSTACK_FAILURE_DOMAIN_ALT,
// OPENSTACK_VOLUME_TYPE_ALT, OPENSTACK_CLOUD, OPENSTACK_CLOUD_ADMIN) through
// lookup (os.LookupEnv when nil), applies the defaults and validates the result.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var c Config
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok {
			*dst = strings.TrimSpace(v)
		}
	}
	prefix := func(name string, dst *netip.Prefix) {
		if v, ok := lookup(name); ok && v != "" {
			p, err := netip.ParsePrefix(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not a CIDR such as 10.0.3.0/24: %w", name, v, err))
				return
			}
			*dst = p
		}
	}
	addr := func(name string, dst *netip.Addr) {
		if v, ok := lookup(name); ok && v != "" {
			a, err := netip.ParseAddr(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not an IP address such as 10.0.3.15: %w", name, v, err))
				return
			}
			*dst = a
		}
	}
	str("CLUSTER_NAME", &c.Name)
	prefix("PRIVATE_NETWORK_CIDR", &c.PrivateNetworkCIDR)
	addr("CONTROLLER_IP", &c.ControllerIP)
	addr("WORKER_IP", &c.WorkerIP)
	prefix("FLOATING_RANGE", &c.FloatingRange)
	str("OPENSTACK_FAILURE_DOMAIN", &c.FailureDomain)
	str("OPENSTACK_FAILURE_DOMAIN_ALT", &c.FailureDomainAlt)
	str("OPENSTACK_VOLUME_TYPE_ALT", &c.VolumeTypeAlt)
	str("OPENSTACK_CLOUD", &c.Cloud)
	str("OPENSTACK_CLOUD_ADMIN", &c.CloudAdmin)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

// EnvVar is one of the variables ConfigFromEnv reads, with its value.
type EnvVar struct {
	// Name is the variable's name, such as PRIVATE_NETWORK_CIDR.
	Name string
	// Value is its value as ConfigFromEnv parses it.
	Value string
}

// EnvVars returns c, with its defaults, as the variables ConfigFromEnv
// reads, in the same order: ConfigFromEnv of them gives c back.
func (c Config) EnvVars() []EnvVar {
	c = c.WithDefaults()
	return []EnvVar{
		{"CLUSTER_NAME", c.Name},
		{"PRIVATE_NETWORK_CIDR", c.PrivateNetworkCIDR.String()},
		{"CONTROLLER_IP", c.ControllerIP.String()},
		{"WORKER_IP", c.WorkerIP.String()},
		{"FLOATING_RANGE", c.FloatingRange.String()},
		{"OPENSTACK_FAILURE_DOMAIN", c.FailureDomain},
		{"OPENSTACK_FAILURE_DOMAIN_ALT", c.FailureDomainAlt},
		{"OPENSTACK_VOLUME_TYPE_ALT", c.VolumeTypeAlt},
		{"OPENSTACK_CLOUD", c.Cloud},
		{"OPENSTACK_CLOUD_ADMIN", c.CloudAdmin},
	}
}

// Routes returns the prefixes a tunnel to the controller must carry: the
// private network and the floating range.
func (c Config) Routes() []netip.Prefix {
	c = c.WithDefaults()
	return []netip.Prefix{c.PrivateNetworkCIDR.Masked(), c.FloatingRange.Masked()}
}

// Validate applies the defaults and reports every problem in c: CIDRs that
// overlap each other or podman's 10.0.2.0/24, addresses outside the private
// network, equal addresses or zones, and a CLUSTER_NAME that cannot name a
// machine or a Kubernetes object.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !c.PrivateNetworkCIDR.Addr().Is4() {
		fail("PRIVATE_NETWORK_CIDR %s: only IPv4 is supported; use a network such as 10.0.3.0/24", c.PrivateNetworkCIDR)
	}
	if !c.FloatingRange.Addr().Is4() {
		fail("FLOATING_RANGE %s: only IPv4 is supported; use a network such as 172.24.4.0/24", c.FloatingRange)
	}
	if len(errs) > 0 {
		// The checks below do IPv4 arithmetic.
		return fmt.Errorf("invalid devstack configuration: %w", errors.Join(errs...))
	}
	if c.PrivateNetworkCIDR.Bits() > 29 {
		fail("PRIVATE_NETWORK_CIDR %s: too small for a controller and a worker; use a /29 or larger", c.PrivateNetworkCIDR)
	}
	if c.FloatingRange.Bits() > 28 {
		fail("FLOATING_RANGE %s: too small for a router and floating IPs; use a /28 or larger", c.FloatingRange)
	}
	if c.PrivateNetworkCIDR.Overlaps(c.FloatingRange) {
		fail("PRIVATE_NETWORK_CIDR %s overlaps FLOATING_RANGE %s; choose networks that do not overlap", c.PrivateNetworkCIDR, c.FloatingRange)
	}
	for _, n := range []struct {
		name string
		p    netip.Prefix
	}{{"PRIVATE_NETWORK_CIDR", c.PrivateNetworkCIDR}, {"FLOATING_RANGE", c.FloatingRange}} {
		if n.p.Overlaps(PodmanSlirpCIDR) {
			fail("%s %s overlaps %s, the network podman's slirp4netns gives kind; choose another network", n.name, n.p, PodmanSlirpCIDR)
		}
	}
	for _, a := range []struct {
		name string
		ip   netip.Addr
	}{{"CONTROLLER_IP", c.ControllerIP}, {"WORKER_IP", c.WorkerIP}} {
		p := c.PrivateNetworkCIDR.Masked()
		switch {
		case !p.Contains(a.ip):
			fail("%s %s is outside PRIVATE_NETWORK_CIDR %s; pick an address inside it", a.name, a.ip, c.PrivateNetworkCIDR)
		case a.ip == p.Addr():
			fail("%s %s is the network address of %s; pick a host address", a.name, a.ip, c.PrivateNetworkCIDR)
		case a.ip == lastAddr(p):
			fail("%s %s is the broadcast address of %s; pick a host address", a.name, a.ip, c.PrivateNetworkCIDR)
		}
	}
	if c.ControllerIP == c.WorkerIP {
		fail("CONTROLLER_IP and WORKER_IP are both %s; give the worker its own address", c.ControllerIP)
	}
	if c.FailureDomain == c.FailureDomainAlt {
		fail("OPENSTACK_FAILURE_DOMAIN and OPENSTACK_FAILURE_DOMAIN_ALT are both %q; the worker needs a zone of its own", c.FailureDomain)
	}
	if c.Cloud == c.CloudAdmin {
		fail("OPENSTACK_CLOUD and OPENSTACK_CLOUD_ADMIN are both %q; they name two different clouds.yaml entries", c.Cloud)
	}
	if !clusterName.MatchString(c.Name) {
		fail("CLUSTER_NAME %q: use 1-63 lower case letters, digits and dashes, starting and ending with a letter or digit (it names the hosts' machines and Kubernetes objects)", c.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid devstack configuration: %w", err)
	}
	return nil
}

// clusterName is what CLUSTER_NAME may be: a DNS label (RFC 1123), as
// Kubernetes object names and cloud instance names require.
var clusterName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
