package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/stackgate/stackgate/devstack"
)

// Defaults of the DevStack the real hosts build, after CAPO's hack/ci/cloud-init.
const (
	// DefaultBranch is the DevStack (and OpenStack) branch that is checked out.
	DefaultBranch = "stable/2025.2"
	// DefaultGitBase is where DevStack clones OpenStack from (GIT_BASE).
	DefaultGitBase = "https://opendev.org"
	// DefaultMTU fits under GCE's 1460 and the 1450 of an OpenStack tenant network.
	DefaultMTU = 1400
	// DefaultVolumeBackingFileSize is the size of the sparse file behind cinder's LVM backend.
	DefaultVolumeBackingFileSize = "100G"
	// DefaultOVNBranch and DefaultOVSBranch are the LTS branches CAPO builds OVN
	// and OVS from (its workaround for kubernetes-sigs/cluster-api-provider-openstack#2320).
	DefaultOVNBranch = "branch-24.03"
	DefaultOVSBranch = "branch-3.3"
)

// DefaultDNSNameservers is the DNS server neutron gives subnets created without one.
var DefaultDNSNameservers = []netip.Addr{netip.MustParseAddr("8.8.8.8")}

// DefaultImageURLs are the images the controller uploads while stacking: the
// Octavia amphora (so it is not built) and cirros.
var DefaultImageURLs = []string{
	"https://storage.googleapis.com/artifacts.k8s-staging-capi-openstack.appspot.com/test/amphora/2022-12-05/amphora-x64-haproxy.qcow2",
	"https://storage.googleapis.com/artifacts.k8s-staging-capi-openstack.appspot.com/test/cirros/2022-12-05/cirros-0.6.1-x86_64-disk.img",
}

// Meta-section targets of local.conf's post-config phase: DevStack expands
// the variables to the configuration files of the services.
const (
	NovaConf       = "$NOVA_CONF"
	CinderConf     = "$CINDER_CONF"
	NeutronConf    = "$NEUTRON_CONF"
	NeutronML2Conf = "/$Q_PLUGIN_CONF_FILE"
)

// Plugin is a DevStack plugin (enable_plugin NAME REPO BRANCH). Plugins run
// in the order they are listed.
type Plugin struct {
	// Name is the plugin's name, such as "neutron" or "octavia".
	Name string `json:"name"`
	// Repo is its git URL; empty means GitBase/openstack/Name.
	Repo string `json:"repo,omitempty"`
	// Branch is its branch; empty means LocalConf.Branch.
	Branch string `json:"branch,omitempty"`
}

// OVN holds the ML2/OVN settings (Q_AGENT=ovn), which is what CAPO's CI uses.
type OVN struct {
	// MechanismDrivers are ML2's mechanism drivers (Q_ML2_PLUGIN_MECHANISM_DRIVERS).
	MechanismDrivers []string `json:"mechanismDrivers"`
	// ChassisAsGateway makes this node a gateway chassis for routers
	// (ENABLE_CHASSIS_AS_GW): true on the controller, false on the worker.
	ChassisAsGateway bool `json:"chassisAsGateway"`
	// CreatePublicNetwork creates the external network "public" on
	// FloatingRange (OVN_L3_CREATE_PUBLIC_NETWORK); controller only.
	CreatePublicNetwork bool `json:"createPublicNetwork"`
	// BuildFromSource builds OVN and OVS from OVNBranch and OVSBranch
	// (OVN_BUILD_FROM_SOURCE) instead of using the distribution's packages.
	BuildFromSource bool `json:"buildFromSource"`
	// OVNBranch is OVN's branch when BuildFromSource (OVN_BRANCH).
	OVNBranch string `json:"ovnBranch,omitempty"`
	// OVSBranch is Open vSwitch's branch when BuildFromSource (OVS_BRANCH).
	OVSBranch string `json:"ovsBranch,omitempty"`
}

// Cinder holds the block storage settings of a node running c-vol or c-api.
type Cinder struct {
	// Backends are cinder's backends as DevStack names them (CINDER_ENABLED_BACKENDS),
	// such as "lvm:lvmdriver-1"; empty keeps DevStack's default (LVM).
	Backends []string `json:"backends,omitempty"`
	// AvailabilityZone is the zone of this node's volume service
	// ([DEFAULT] storage_availability_zone of cinder.conf).
	AvailabilityZone string `json:"availabilityZone,omitempty"`
	// VolumeBackingFileSize is the size of the LVM backing file (VOLUME_BACKING_FILE_SIZE).
	VolumeBackingFileSize string `json:"volumeBackingFileSize,omitempty"`
}

// Options are the key = value lines of one INI section.
type Options map[string]string

// Sections are the INI sections of one configuration file, by name ("DEFAULT", "scheduler").
type Sections map[string]Options

// LocalConf is a typed DevStack local.conf: the [[local|localrc]] variables
// and the [[post-config|FILE]] sections. Build one with NewControllerLocalConf
// or NewWorkerLocalConf and adjust its fields; Render writes it in the format
// DevStack reads, in a deterministic order. String gives the same text with
// the credentials redacted, for logs and artifacts.
type LocalConf struct {
	// Branch is the branch of DevStack and of every plugin, "stable/2025.2" or "master".
	Branch string `json:"branch"`
	// GitBase is where OpenStack's repositories are cloned from (GIT_BASE).
	GitBase string `json:"gitBase"`
	// HostIP is this node's address on the private network (HOST_IP).
	HostIP netip.Addr `json:"hostIP"`
	// ServiceHost is the controller's address, where every API, the database
	// and the message queue run (SERVICE_HOST). On a worker it differs from
	// HostIP and also sets RABBIT_HOST, DATABASE_HOST and GLANCE_HOSTPORT.
	ServiceHost netip.Addr `json:"serviceHost"`
	// FloatingRange is the subnet of the external network (FLOATING_RANGE); controller only.
	FloatingRange netip.Prefix `json:"floatingRange,omitzero"`
	// FixedRange is the subnet of the demo project's private network (FIXED_RANGE); zero keeps DevStack's.
	FixedRange netip.Prefix `json:"fixedRange,omitzero"`
	// MTU is the MTU of the physical network (global_physnet_mtu and PUBLIC_BRIDGE_MTU).
	MTU int `json:"mtu"`
	// DNSNameservers are the DNS servers OVN gives subnets created without any ([ovn] dns_servers).
	DNSNameservers []netip.Addr `json:"dnsNameservers,omitempty"`
	// Passwords are DevStack's credentials; they print as Redacted.
	Passwords Passwords `json:"passwords"`
	// EnabledServices are DevStack's service names (ENABLED_SERVICES), such as "n-cpu".
	EnabledServices []string `json:"enabledServices"`
	// DisabledServices are services DevStack must not run even if a plugin enables them (DISABLED_SERVICES).
	DisabledServices []string `json:"disabledServices,omitempty"`
	// Plugins are DevStack plugins, in the order they run; Octavia adds its own.
	Plugins []Plugin `json:"plugins,omitempty"`
	// OVN holds the ML2/OVN settings.
	OVN OVN `json:"ovn"`
	// Octavia enables the octavia plugin and its services (API, worker,
	// health manager, housekeeping, driver agent) with the amphora driver.
	Octavia bool `json:"octavia"`
	// Cinder holds the block storage settings.
	Cinder Cinder `json:"cinder"`
	// LibvirtType is nova's virtualisation ("kvm" needs /dev/kvm, "qemu" emulates) (LIBVIRT_TYPE).
	LibvirtType string `json:"libvirtType"`
	// ImageURLs are images uploaded to glance while stacking (IMAGE_URLS);
	// DevStack's default images are never downloaded.
	ImageURLs []string `json:"imageURLs,omitempty"`
	// Vars are further [[local|localrc]] variables, written after the typed ones
	// in name order. Variables the typed fields own are refused. String
	// redacts the values it takes for credentials (see String).
	Vars map[string]string `json:"vars,omitempty"`
	// PostConfig are [[post-config|FILE]] sections by FILE (NovaConf,
	// CinderConf, ...). They are merged over the sections derived from the
	// typed fields (MTU, DNS, Cinder's zone), so an entry here wins. String
	// redacts the values it takes for credentials (see String).
	PostConfig map[string]Sections `json:"postConfig,omitempty"`
}

// NewControllerLocalConf returns the local.conf of the controller of cfg:
// every API, the scheduler and conductor, a compute service, glance, ML2/OVN
// with the controller as gateway chassis and the external network on
// FloatingRange, Octavia, and cinder with a volume service in
// FailureDomain; nova schedules to FailureDomain by default and discovers
// new compute hosts every 2 seconds, so the worker appears without an
// administrator running nova-manage.
func NewControllerLocalConf(cfg devstack.Config, pw Passwords) (*LocalConf, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lc := baseLocalConf(cfg.ControllerIP, cfg.ControllerIP, pw)
	lc.FloatingRange = cfg.FloatingRange
	lc.EnabledServices = []string{
		"key", "rabbit", "mysql",
		"n-api", "n-api-meta", "n-cond", "n-cpu", "n-novnc", "n-sch",
		"placement-api", "placement-client",
		"g-api",
		"q-svc", "neutron-trunk", "ovn-controller", "ovn-northd", "ovs-vswitchd", "ovsdb-server", "q-ovn-metadata-agent",
		"c-api", "c-sch", "c-vol",
	}
	lc.DisabledServices = []string{"q-agt", "q-dhcp", "q-l3", "q-meta", "q-metering"}
	lc.OVN.MechanismDrivers = []string{"ovn", "logger"}
	lc.OVN.ChassisAsGateway = true
	lc.OVN.CreatePublicNetwork = true
	lc.Octavia = true
	lc.Cinder.AvailabilityZone = cfg.FailureDomain
	lc.ImageURLs = slices.Clone(DefaultImageURLs)
	lc.PostConfig = map[string]Sections{
		NovaConf: {
			"DEFAULT": {
				"cpu_allocation_ratio":  "2.0",
				"default_schedule_zone": cfg.FailureDomain,
			},
			"scheduler": {
				"query_placement_for_availability_zone": "True",
				"discover_hosts_in_cells_interval":      "2",
			},
		},
		NeutronConf: {
			"DEFAULT": {"service_plugins": "trunk,router"},
		},
	}
	return lc, nil
}

// NewWorkerLocalConf returns the local.conf of the worker of cfg: a compute
// service, an OVN chassis (not a gateway) and a cinder volume service in
// FailureDomainAlt, all registering with the controller at ControllerIP.
func NewWorkerLocalConf(cfg devstack.Config, pw Passwords) (*LocalConf, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lc := baseLocalConf(cfg.WorkerIP, cfg.ControllerIP, pw)
	lc.EnabledServices = []string{
		"n-cpu", "placement-client", "c-vol",
		"ovn-controller", "ovs-vswitchd", "ovsdb-server", "q-fake", "q-ovn-metadata-agent",
	}
	lc.DisabledServices = []string{"horizon", "ovn-northd", "q-agt", "q-dhcp", "q-l3", "q-meta", "q-metering", "q-svc", "q-vpn"}
	lc.OVN.MechanismDrivers = []string{"ovn"}
	lc.Cinder.AvailabilityZone = cfg.FailureDomainAlt
	lc.PostConfig = map[string]Sections{
		NovaConf: {"DEFAULT": {"cpu_allocation_ratio": "2.0"}},
	}
	return lc, nil
}

func baseLocalConf(host, service netip.Addr, pw Passwords) *LocalConf {
	return &LocalConf{
		Branch:         DefaultBranch,
		GitBase:        DefaultGitBase,
		HostIP:         host,
		ServiceHost:    service,
		MTU:            DefaultMTU,
		DNSNameservers: slices.Clone(DefaultDNSNameservers),
		Passwords:      pw,
		Plugins:        []Plugin{{Name: "neutron"}},
		OVN: OVN{
			BuildFromSource: true,
			OVNBranch:       DefaultOVNBranch,
			OVSBranch:       DefaultOVSBranch,
		},
		Cinder:      Cinder{VolumeBackingFileSize: DefaultVolumeBackingFileSize},
		LibvirtType: "kvm",
	}
}

// IsController reports whether the node runs the APIs (ServiceHost is HostIP).
func (lc *LocalConf) IsController() bool { return lc.HostIP == lc.ServiceHost }

// Set sets option key of section in the post-config sections of file,
// creating what is missing, and returns lc.
func (lc *LocalConf) Set(file, section, key, value string) *LocalConf {
	if lc.PostConfig == nil {
		lc.PostConfig = map[string]Sections{}
	}
	if lc.PostConfig[file] == nil {
		lc.PostConfig[file] = Sections{}
	}
	if lc.PostConfig[file][section] == nil {
		lc.PostConfig[file][section] = Options{}
	}
	lc.PostConfig[file][section][key] = value
	return lc
}

var (
	serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	varName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	branchName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	gitURL      = regexp.MustCompile(`^https?://[A-Za-z0-9._~:/@%+-]+$`)
	// bareValue is what a localrc value may hold without quotes.
	bareValue = regexp.MustCompile(`^[A-Za-z0-9_./:,+@%=-]*$`)
)

// ownedVars are the localrc variables the typed fields write; Vars may not set them.
var ownedVars = []string{
	"ADMIN_PASSWORD", "CINDER_ENABLED_BACKENDS", "DATABASE_HOST", "DATABASE_PASSWORD", "DATABASE_TYPE",
	"DISABLED_SERVICES", "DOWNLOAD_DEFAULT_IMAGES", "ENABLED_SERVICES", "ENABLE_CHASSIS_AS_GW",
	"FIXED_RANGE", "FLOATING_RANGE", "GIT_BASE", "GLANCE_HOSTPORT", "HOST_IP", "IMAGE_URLS",
	"LIBVIRT_TYPE", "OVN_BRANCH", "OVN_BUILD_FROM_SOURCE", "OVN_L3_CREATE_PUBLIC_NETWORK", "OVS_BRANCH",
	"PUBLIC_BRIDGE_MTU", "Q_AGENT", "Q_ML2_PLUGIN_MECHANISM_DRIVERS", "RABBIT_HOST", "RABBIT_PASSWORD",
	"SERVICE_HOST", "SERVICE_PASSWORD", "SERVICE_TOKEN", "VOLUME_BACKING_FILE_SIZE",
}

// Validate reports every problem of lc, naming the field and the fix. It
// never prints a password.
func (lc *LocalConf) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !branchName.MatchString(lc.Branch) {
		fail("LocalConf.Branch %q is not a branch name; use %q or \"master\"", lc.Branch, DefaultBranch)
	}
	if !gitURL.MatchString(lc.GitBase) {
		fail("LocalConf.GitBase %q is not an http(s) URL; use %q", lc.GitBase, DefaultGitBase)
	}
	if !lc.HostIP.Is4() {
		fail("LocalConf.HostIP %v is not an IPv4 address; set this node's private address, such as 10.0.3.15", lc.HostIP)
	}
	if !lc.ServiceHost.Is4() {
		fail("LocalConf.ServiceHost %v is not an IPv4 address; set the controller's private address (HostIP on the controller)", lc.ServiceHost)
	}
	if lc.IsController() && !lc.FloatingRange.IsValid() {
		fail("LocalConf.FloatingRange is not set on the controller; set the external network's CIDR, such as 172.24.4.0/24")
	}
	if !lc.IsController() && lc.FloatingRange.IsValid() {
		fail("LocalConf.FloatingRange %s is set on a worker; only the controller creates the external network, leave it empty", lc.FloatingRange)
	}
	if lc.FloatingRange.IsValid() && lc.FixedRange.IsValid() && lc.FloatingRange.Overlaps(lc.FixedRange) {
		fail("LocalConf.FixedRange %s overlaps FloatingRange %s; choose networks that do not overlap", lc.FixedRange, lc.FloatingRange)
	}
	if lc.MTU < 1280 || lc.MTU > 9216 {
		fail("LocalConf.MTU %d is outside 1280..9216; use the MTU of the hosts' network, such as %d", lc.MTU, DefaultMTU)
	}
	for _, a := range lc.DNSNameservers {
		if !a.IsValid() {
			fail("LocalConf.DNSNameservers holds an invalid address; use addresses such as 8.8.8.8")
		}
	}
	if err := lc.Passwords.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("LocalConf.%w", err))
	}
	if len(lc.EnabledServices) == 0 {
		fail("LocalConf.EnabledServices is empty; start from NewControllerLocalConf or NewWorkerLocalConf")
	}
	for _, list := range []struct {
		name     string
		services []string
	}{{"EnabledServices", lc.EnabledServices}, {"DisabledServices", lc.DisabledServices}} {
		for _, s := range list.services {
			if !serviceName.MatchString(s) {
				fail("LocalConf.%s: %q is not a DevStack service name; use names such as \"n-cpu\" or \"c-vol\"", list.name, s)
			}
		}
	}
	for _, s := range lc.services() {
		if slices.Contains(lc.DisabledServices, s) {
			fail("LocalConf: service %q is both enabled and disabled; remove it from one of EnabledServices and DisabledServices", s)
		}
	}
	seen := map[string]bool{}
	for _, p := range lc.plugins() {
		if !serviceName.MatchString(p.Name) {
			fail("LocalConf.Plugins: %q is not a plugin name; use names such as \"octavia\"", p.Name)
		}
		if seen[p.Name] {
			fail("LocalConf.Plugins: %q is enabled twice; list each plugin once (Octavia adds its own)", p.Name)
		}
		seen[p.Name] = true
		if p.Repo != "" && !gitURL.MatchString(p.Repo) || p.Branch != "" && !branchName.MatchString(p.Branch) {
			fail("LocalConf.Plugins: %q needs an http(s) URL without spaces, quotes or shell characters and a plain branch name", p.Name)
		}
	}
	for _, d := range lc.OVN.MechanismDrivers {
		if !serviceName.MatchString(d) {
			fail("LocalConf.OVN.MechanismDrivers: %q is not a driver name; use \"ovn\" or \"logger\"", d)
		}
	}
	if len(lc.OVN.MechanismDrivers) == 0 {
		fail("LocalConf.OVN.MechanismDrivers is empty; use [\"ovn\"]")
	}
	if lc.OVN.BuildFromSource && (lc.OVN.OVNBranch == "" || lc.OVN.OVSBranch == "") {
		fail("LocalConf.OVN.BuildFromSource needs OVNBranch and OVSBranch; use %q and %q", DefaultOVNBranch, DefaultOVSBranch)
	}
	if lc.LibvirtType != "kvm" && lc.LibvirtType != "qemu" {
		fail("LocalConf.LibvirtType %q is neither \"kvm\" nor \"qemu\"; use \"qemu\" where the host has no nested virtualisation", lc.LibvirtType)
	}
	for _, u := range lc.ImageURLs {
		if strings.ContainsAny(u, ", \t\n'\"") {
			fail("LocalConf.ImageURLs: %q holds a comma, space or quote; give one plain URL per entry", u)
		}
	}
	for _, name := range sortedKeys(lc.Vars) {
		switch {
		case !varName.MatchString(name):
			fail("LocalConf.Vars: %q is not a shell variable name; use names such as SERVICE_TIMEOUT", name)
		case slices.Contains(ownedVars, name):
			fail("LocalConf.Vars: %s is written from a typed field of LocalConf; set that field instead", name)
		case strings.ContainsAny(lc.Vars[name], "\n\r"):
			fail("LocalConf.Vars: %s holds a line break; localrc values are single lines", name)
		}
	}
	pc := lc.postConfig()
	for _, file := range sortedKeys(pc) {
		sections := pc[file]
		if file == "" || strings.ContainsAny(file, "[]|\n ") {
			fail("LocalConf.PostConfig: %q is not a file DevStack knows; use NovaConf, CinderConf, NeutronConf or an absolute path", file)
		}
		for _, section := range sortedKeys(sections) {
			opts := sections[section]
			if section == "" || strings.ContainsAny(section, "[]\n") {
				fail("LocalConf.PostConfig[%q]: %q is not an INI section name", file, section)
			}
			for _, k := range sortedKeys(opts) {
				v := opts[k]
				switch {
				case k == "" || strings.ContainsAny(k, "=[]\n") || strings.ContainsAny(v, "\n\r"):
					fail("LocalConf.PostConfig[%q][%q]: option %q must be a single-line key = value", file, section, k)
				case strings.ContainsAny(v, "`\"\\") || strings.Contains(v, "$("):
					// DevStack evaluates post-config values in the shell ($VAR references work).
					fail("LocalConf.PostConfig[%q][%q]: the value of %q holds a double quote, backslash, backtick or $( that DevStack's shell would run; remove it", file, section, k)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid local.conf: %w", err)
	}
	return nil
}

// Render validates lc and returns local.conf as DevStack reads it, passwords included.
func (lc *LocalConf) Render() ([]byte, error) {
	if err := lc.Validate(); err != nil {
		return nil, err
	}
	return lc.render(true), nil
}

// String returns local.conf with the credentials replaced by Redacted, for
// logs and artifacts: the Passwords; the whole value of every variable and
// post-config option whose name devstack.IsSecretName picks; every
// occurrence of one of the Passwords in any other value; and the
// credentials of every URL (devstack.RedactURLCredentials). The rest is as
// Render writes it. It does not validate. A LocalConf printed with any fmt
// verb, as a value or a pointer, prints this.
func (lc LocalConf) String() string { return string(lc.render(false)) }

// GoString returns String, so %#v does not show Vars and PostConfig as
// given (they may hold credentials). JSON keeps every value: LocalConf is
// also configuration.
func (lc LocalConf) GoString() string { return lc.String() }

// valueRedactor returns a function that replaces, in a value, every
// occurrence of one of lc's Passwords and every URL's credentials by
// Redacted. It is made once per rendering.
func (lc *LocalConf) valueRedactor() func(string) string {
	var known []string
	for _, f := range lc.Passwords.fields() {
		known = append(known, f.value.Reveal())
	}
	r := devstack.NewRedactor(known...)
	return func(value string) string {
		return string(r.RedactKnown([]byte(devstack.RedactURLCredentials(value))))
	}
}

// services returns the enabled services, Octavia's included, deduplicated and sorted.
func (lc *LocalConf) services() []string {
	s := slices.Clone(lc.EnabledServices)
	if lc.Octavia {
		s = append(s, "octavia", "o-api", "o-cw", "o-da", "o-hk", "o-hm")
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func (lc *LocalConf) plugins() []Plugin {
	p := slices.Clone(lc.Plugins)
	if lc.Octavia {
		p = append(p, Plugin{Name: "octavia"})
	}
	return p
}

// postConfig merges the sections derived from the typed fields with PostConfig.
func (lc *LocalConf) postConfig() map[string]Sections {
	out := map[string]Sections{}
	set := func(file, section, key, value string) {
		if out[file] == nil {
			out[file] = Sections{}
		}
		if out[file][section] == nil {
			out[file][section] = Options{}
		}
		out[file][section][key] = value
	}
	set(NeutronConf, "DEFAULT", "global_physnet_mtu", strconv.Itoa(lc.MTU))
	if lc.IsController() && len(lc.DNSNameservers) > 0 {
		dns := make([]string, len(lc.DNSNameservers))
		for i, a := range lc.DNSNameservers {
			dns[i] = a.String()
		}
		set(NeutronML2Conf, "ovn", "dns_servers", strings.Join(dns, ","))
	}
	if lc.Cinder.AvailabilityZone != "" {
		set(CinderConf, "DEFAULT", "storage_availability_zone", lc.Cinder.AvailabilityZone)
	}
	for file, sections := range lc.PostConfig {
		for section, opts := range sections {
			for k, v := range opts {
				set(file, section, k, v)
			}
		}
	}
	return out
}

func (lc *LocalConf) render(reveal bool) []byte {
	var b bytes.Buffer
	redact := func(value string) string { return value }
	if !reveal {
		redact = lc.valueRedactor()
	}
	// show returns the value of name as the rendering shows it.
	show := func(name, value string) string {
		switch {
		case reveal:
			return value
		case devstack.IsSecretName(name):
			return Redacted
		default:
			return redact(value)
		}
	}
	v := func(name, value string) {
		value = show(name, value)
		if !reveal && value == Redacted {
			fmt.Fprintf(&b, "%s=%s\n", name, Redacted)
			return
		}
		if !bareValue.MatchString(value) {
			value = shellQuote(value)
		}
		fmt.Fprintf(&b, "%s=%s\n", name, value)
	}
	secret := func(name string, s Secret) {
		if reveal {
			v(name, s.Reveal())
		} else {
			fmt.Fprintf(&b, "%s=%s\n", name, Redacted)
		}
	}
	comment := func(text string) { fmt.Fprintf(&b, "\n# %s\n", text) }
	boolean := func(x bool) string {
		if x {
			return "True"
		}
		return "False"
	}

	b.WriteString("[[local|localrc]]\n")
	v("GIT_BASE", lc.GitBase)
	v("HOST_IP", lc.HostIP.String())
	v("SERVICE_HOST", lc.ServiceHost.String())
	if !lc.IsController() {
		v("RABBIT_HOST", lc.ServiceHost.String())
		v("DATABASE_TYPE", "mysql")
		v("DATABASE_HOST", lc.ServiceHost.String())
		v("GLANCE_HOSTPORT", lc.ServiceHost.String()+":9292")
	}
	if lc.FloatingRange.IsValid() {
		v("FLOATING_RANGE", lc.FloatingRange.String())
	}
	if lc.FixedRange.IsValid() {
		v("FIXED_RANGE", lc.FixedRange.String())
	}
	v("SERVICE_TIMEOUT", "240")
	v("LOGFILE", "/opt/stack/logs/stack.sh.log")
	v("VERBOSE", "True")
	v("LOG_COLOR", "False")
	v("LIBVIRT_TYPE", lc.LibvirtType)

	comment("Credentials")
	secret("ADMIN_PASSWORD", lc.Passwords.Admin)
	secret("DATABASE_PASSWORD", lc.Passwords.Database)
	secret("RABBIT_PASSWORD", lc.Passwords.RabbitMQ)
	secret("SERVICE_PASSWORD", lc.Passwords.Service)
	secret("SERVICE_TOKEN", lc.Passwords.ServiceToken)

	comment("Plugins, in the order they run")
	for _, p := range lc.plugins() {
		repo := p.Repo
		if repo == "" {
			repo = strings.TrimSuffix(lc.GitBase, "/") + "/openstack/" + p.Name
		}
		branch := p.Branch
		if branch == "" {
			branch = lc.Branch
		}
		fmt.Fprintf(&b, "enable_plugin %s %s %s\n", p.Name, show("", repo), branch)
	}

	comment("Services")
	v("ENABLED_SERVICES", strings.Join(lc.services(), ","))
	if len(lc.DisabledServices) > 0 {
		d := slices.Clone(lc.DisabledServices)
		slices.Sort(d)
		v("DISABLED_SERVICES", strings.Join(slices.Compact(d), ","))
	}

	comment("Neutron: ML2/OVN")
	v("Q_AGENT", "ovn")
	v("Q_ML2_PLUGIN_MECHANISM_DRIVERS", strings.Join(lc.OVN.MechanismDrivers, ","))
	v("ENABLE_CHASSIS_AS_GW", boolean(lc.OVN.ChassisAsGateway))
	if lc.IsController() {
		v("OVN_L3_CREATE_PUBLIC_NETWORK", boolean(lc.OVN.CreatePublicNetwork))
	}
	v("PUBLIC_BRIDGE_MTU", strconv.Itoa(lc.MTU))
	if lc.OVN.BuildFromSource {
		v("OVN_BUILD_FROM_SOURCE", "True")
		v("OVN_BRANCH", lc.OVN.OVNBranch)
		v("OVS_BRANCH", lc.OVN.OVSBranch)
	}

	comment("Cinder")
	if len(lc.Cinder.Backends) > 0 {
		v("CINDER_ENABLED_BACKENDS", strings.Join(lc.Cinder.Backends, ","))
	}
	if lc.Cinder.VolumeBackingFileSize != "" {
		v("VOLUME_BACKING_FILE_SIZE", lc.Cinder.VolumeBackingFileSize)
	}

	comment("Images")
	v("DOWNLOAD_DEFAULT_IMAGES", "False")
	if len(lc.ImageURLs) > 0 {
		v("IMAGE_URLS", strings.Join(lc.ImageURLs, ","))
	}

	if len(lc.Vars) > 0 {
		comment("Further variables")
		for _, name := range sortedKeys(lc.Vars) {
			v(name, lc.Vars[name])
		}
	}

	pc := lc.postConfig()
	for _, file := range sortedKeys(pc) {
		fmt.Fprintf(&b, "\n[[post-config|%s]]\n", file)
		sections := pc[file]
		names := sortedKeys(sections)
		// DEFAULT first, as OpenStack's own files have it.
		if i := slices.Index(names, "DEFAULT"); i > 0 {
			names = append([]string{"DEFAULT"}, slices.Delete(names, i, i+1)...)
		}
		for i, section := range names {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "[%s]\n", section)
			for _, k := range sortedKeys(sections[section]) {
				fmt.Fprintf(&b, "%s = %s\n", k, show(k, sections[section][k]))
			}
		}
	}
	return b.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
