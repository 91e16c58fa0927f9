package cloudinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"text/template"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/data"
	"github.com/stackgate/stackgate/devstack"
)

// Role is the part a node plays in the two-node DevStack.
type Role string

// The two roles.
const (
	// Controller runs every API, a compute and a volume service in
	// Config.FailureDomain, and the post-stack set-up.
	Controller Role = "controller"
	// Worker runs a compute and a volume service in Config.FailureDomainAlt
	// and registers itself with the controller.
	Worker Role = "worker"
)

// Defaults of Input's timeouts.
const (
	// DefaultControllerTimeout bounds how long the worker waits for the
	// controller's keystone before it runs stack.sh.
	DefaultControllerTimeout = 90 * time.Minute
	// DefaultRegistrationTimeout bounds how long the worker waits, after
	// stack.sh, for its compute and volume services to be up and for its
	// host to be in Config.FailureDomainAlt's aggregate.
	DefaultRegistrationTimeout = 20 * time.Minute
	// DefaultCloneTimeout bounds the retries of the DevStack checkout.
	DefaultCloneTimeout = 15 * time.Minute
)

// Packages are what cloud-init's packages module installs before DevStack
// runs: names that exist on Ubuntu and CentOS Stream alike. DevStack
// installs everything else itself.
var Packages = []string{"ca-certificates", "git", "python3", "sudo"}

// Sysctls are the kernel settings a DevStack node needs: routing between
// the private network and the floating range, without reverse-path filtering.
var Sysctls = []string{
	"net.ipv4.ip_forward = 1",
	"net.ipv4.conf.all.rp_filter = 0",
	"net.ipv4.conf.default.rp_filter = 0",
}

// Flavor is a nova flavor the controller (re)creates after stacking.
type Flavor struct {
	// Name is the flavor's name.
	Name string `json:"name"`
	// ID is its fixed ID, so templates may refer to it.
	ID string `json:"id"`
	// RAMMB is its memory in MiB.
	RAMMB int `json:"ramMB"`
	// VCPUs is its number of virtual CPUs.
	VCPUs int `json:"vcpus"`
	// DiskGB is its root disk in GiB.
	DiskGB int `json:"diskGB"`
	// EphemeralGB is its ephemeral disk in GiB.
	EphemeralGB int `json:"ephemeralGB"`
}

// DefaultFlavors are CAPO's flavors, sized so two e2e specs run side by side.
var DefaultFlavors = []Flavor{
	{Name: "m1.tiny", ID: "1", RAMMB: 512, VCPUs: 1, DiskGB: 1, EphemeralGB: 1},
	{Name: "m1.small", ID: "2", RAMMB: 4192, VCPUs: 2, DiskGB: 20, EphemeralGB: 5},
	{Name: "m1.medium", ID: "3", RAMMB: 6144, VCPUs: 2, DiskGB: 20, EphemeralGB: 5},
	{Name: "m1.tiny.alt", ID: "10", RAMMB: 512, VCPUs: 1, DiskGB: 1, EphemeralGB: 1},
}

// Quota is a project's compute and network quota set after stacking; a zero
// field leaves that quota alone.
type Quota struct {
	// Project is the project's name.
	Project string `json:"project"`
	// Cores is the number of vCPUs.
	Cores int `json:"cores,omitempty"`
	// SecurityGroups is the number of security groups.
	SecurityGroups int `json:"securityGroups,omitempty"`
	// SecurityGroupRules is the number of security group rules.
	SecurityGroupRules int `json:"securityGroupRules,omitempty"`
}

// DefaultQuotas are CAPO's quotas: room for two clusters in the demo project.
var DefaultQuotas = []Quota{
	{Project: "demo", Cores: 32, SecurityGroups: 200, SecurityGroupRules: 1000},
	{Project: "admin", SecurityGroups: 100, SecurityGroupRules: 1000},
}

// Input is what Render needs for one node.
type Input struct {
	// Config is the environment; its addresses, zones and volume type end up
	// in local.conf and in the post-stack and registration scripts.
	Config devstack.Config
	// Role is Controller or Worker.
	Role Role
	// User is the login user the tunnel connects as; it gets passwordless
	// sudo. It must not be "root" or "stack" (DevStack's own user).
	User string
	// AuthorizedKey is User's public key in authorized_keys format ("ssh-ed25519 AAAA...").
	AuthorizedKey string
	// HostKey is the node's SSH host key (NewHostKey); keep its
	// AuthorizedKey to pin the node's identity.
	HostKey HostKey
	// Passwords are DevStack's credentials, the same for both nodes
	// (NewPasswords). Ignored when LocalConf is set.
	Passwords Passwords
	// LocalConf overrides the node's local.conf; nil means
	// NewControllerLocalConf or NewWorkerLocalConf of Config and Passwords.
	// Its HostIP and ServiceHost must match Config and Role.
	LocalConf *LocalConf
	// Flavors are (re)created on the controller; nil means DefaultFlavors.
	Flavors []Flavor
	// Quotas are set on the controller; nil means DefaultQuotas.
	Quotas []Quota
	// ControllerTimeout bounds the worker's wait for the controller; zero means DefaultControllerTimeout.
	ControllerTimeout time.Duration
	// RegistrationTimeout bounds the worker's registration; zero means DefaultRegistrationTimeout.
	RegistrationTimeout time.Duration
	// CloneTimeout bounds the DevStack checkout's retries; zero means DefaultCloneTimeout.
	CloneTimeout time.Duration
}

var userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Render returns the #cloud-config user-data of in.Role's node. The document
// holds the host's private key and DevStack's passwords: hand it to the
// cloud's user-data and nowhere else (RenderRedacted is for artifacts).
func Render(in Input) ([]byte, error) { return render(in, true) }

// RenderRedacted returns the same document as Render with the private host
// key and the credentials of the local.conf (see LocalConf.String) replaced
// by Redacted; it is still valid cloud-config.
func RenderRedacted(in Input) ([]byte, error) { return render(in, false) }

// templateData is what the templates in data/cloud-init see.
type templateData struct {
	Role                Role
	Config              devstack.Config
	User                string
	AuthorizedKey       string
	HostKeyPrivate      string
	HostKeyPublic       string
	LocalConf           string
	Branch              string
	DevStackRepo        string
	HostIP              string
	ControllerIP        string
	Packages            []string
	Sysctls             []string
	Flavors             []Flavor
	Quotas              []Quota
	ControllerSeconds   int
	RegistrationSeconds int
	CloneSeconds        int
	LibvirtType         string
}

func render(in Input, reveal bool) ([]byte, error) {
	lc, err := in.validate()
	if err != nil {
		return nil, err
	}
	cfg := in.Config.WithDefaults()
	d := templateData{
		Role:                in.Role,
		Config:              cfg,
		User:                in.User,
		AuthorizedKey:       strings.TrimSpace(in.AuthorizedKey),
		HostKeyPublic:       in.HostKey.AuthorizedKey(),
		Branch:              lc.Branch,
		DevStackRepo:        strings.TrimSuffix(lc.GitBase, "/") + "/openstack/devstack",
		HostIP:              lc.HostIP.String(),
		ControllerIP:        cfg.ControllerIP.String(),
		Packages:            Packages,
		Sysctls:             Sysctls,
		Flavors:             orDefault(in.Flavors, DefaultFlavors),
		Quotas:              orDefault(in.Quotas, DefaultQuotas),
		ControllerSeconds:   seconds(in.ControllerTimeout, DefaultControllerTimeout),
		RegistrationSeconds: seconds(in.RegistrationTimeout, DefaultRegistrationTimeout),
		CloneSeconds:        seconds(in.CloneTimeout, DefaultCloneTimeout),
		LibvirtType:         lc.LibvirtType,
	}
	if reveal {
		d.HostKeyPrivate = string(in.HostKey.PrivateKeyPEM())
		conf, err := lc.Render()
		if err != nil {
			return nil, fmt.Errorf("rendering local.conf: %w", err)
		}
		d.LocalConf = string(conf)
	} else {
		d.HostKeyPrivate = Redacted
		d.LocalConf = lc.String()
	}
	t, err := templates()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.ExecuteTemplate(&out, string(in.Role)+".yaml.tmpl", d); err != nil {
		return nil, fmt.Errorf("rendering %s cloud-init: %w", in.Role, err)
	}
	return out.Bytes(), nil
}

// validate checks in and returns the node's local.conf.
func (in Input) validate() (*LocalConf, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := in.Config.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Input.Config: %w", err))
	}
	if in.Role != Controller && in.Role != Worker {
		fail("Input.Role %q is not a role; use cloudinit.Controller or cloudinit.Worker", in.Role)
	}
	switch {
	case in.User == "":
		fail("Input.User is empty; set the login user the tunnel connects as, such as \"cloud\"")
	case in.User == "root" || in.User == "stack":
		fail("Input.User %q is reserved (root logins are disabled, \"stack\" is DevStack's own user); use another name, such as \"cloud\"", in.User)
	case !userName.MatchString(in.User):
		fail("Input.User %q is not a Linux user name; use lower-case letters, digits, '-' and '_', such as \"cloud\"", in.User)
	}
	switch {
	case strings.TrimSpace(in.AuthorizedKey) == "":
		fail("Input.AuthorizedKey is empty; set the login user's public key in authorized_keys format (the content of id_ed25519.pub)")
	case strings.Contains(in.AuthorizedKey, "PRIVATE KEY"):
		// Never quote what was given: it is a private key.
		fail("Input.AuthorizedKey holds a private key; give the public key (the content of id_ed25519.pub) instead")
	default:
		if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(in.AuthorizedKey)); err != nil {
			fail("Input.AuthorizedKey is not a public key in authorized_keys format (\"ssh-ed25519 AAAA...\"): %w", err)
		} else if len(bytes.TrimSpace(rest)) > 0 {
			fail("Input.AuthorizedKey holds more than one key; give exactly one")
		}
	}
	if in.HostKey.IsZero() {
		fail("Input.HostKey is empty; create one with cloudinit.NewHostKey and keep its AuthorizedKey to pin the node")
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"ControllerTimeout", in.ControllerTimeout}, {"RegistrationTimeout", in.RegistrationTimeout}, {"CloneTimeout", in.CloneTimeout}} {
		if t.d < 0 || (t.d > 0 && t.d < time.Second) {
			fail("Input.%s %s is negative or below a second; leave it zero for the default or give a duration such as 20m", t.name, t.d)
		}
	}
	for _, f := range in.Flavors {
		if f.Name == "" || f.ID == "" || f.RAMMB <= 0 || f.VCPUs <= 0 || f.DiskGB < 0 || f.EphemeralGB < 0 {
			fail("Input.Flavors: flavor %q needs a name, an ID, RAMMB > 0 and VCPUs > 0", f.Name)
		}
	}
	for _, q := range in.Quotas {
		if q.Project == "" {
			fail("Input.Quotas: a quota has no Project; name the project, such as \"demo\"")
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid cloud-init input: %w", errors.Join(errs...))
	}

	cfg := in.Config.WithDefaults()
	lc := in.LocalConf
	if lc == nil {
		var err error
		if in.Role == Controller {
			lc, err = NewControllerLocalConf(cfg, in.Passwords)
		} else {
			lc, err = NewWorkerLocalConf(cfg, in.Passwords)
		}
		if err != nil {
			return nil, fmt.Errorf("invalid cloud-init input: %w", err)
		}
	} else {
		want := cfg.ControllerIP
		if in.Role == Worker {
			want = cfg.WorkerIP
		}
		if lc.HostIP != want {
			errs = append(errs, fmt.Errorf("Input.LocalConf.HostIP %v is not the %s's address %s in Input.Config; build the local.conf from the same Config", lc.HostIP, in.Role, want))
		}
		if lc.ServiceHost != cfg.ControllerIP {
			errs = append(errs, fmt.Errorf("Input.LocalConf.ServiceHost %v is not Input.Config.ControllerIP %s; build the local.conf from the same Config", lc.ServiceHost, cfg.ControllerIP))
		}
	}
	if err := lc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Input.LocalConf: %w", err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid cloud-init input: %w", errors.Join(errs...))
	}
	return lc, nil
}

func orDefault[T any](v, def []T) []T {
	if v == nil {
		return def
	}
	return v
}

func seconds(d, def time.Duration) int {
	if d == 0 {
		d = def
	}
	return int(d / time.Second)
}

// templates parses data/cloud-init with the functions the templates use.
func templates() (*template.Template, error) {
	root := template.New("cloud-init").Option("missingkey=error")
	root.Funcs(template.FuncMap{
		// yaml quotes a scalar for YAML (a JSON string is a YAML double-quoted scalar).
		"yaml": func(s string) (string, error) {
			b, err := json.Marshal(s)
			return string(b), err
		},
		// sh quotes a word for the shell.
		"sh": shellQuote,
		// indent prefixes every non-empty line of s with n spaces and drops the trailing newline.
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
			for i, l := range lines {
				if l != "" {
					lines[i] = pad + l
				}
			}
			return strings.Join(lines, "\n")
		},
		// include executes the named template and returns its text, for indent.
		"include": func(name string, d any) (string, error) {
			var b bytes.Buffer
			err := root.ExecuteTemplate(&b, name, d)
			return b.String(), err
		},
	})
	sub, err := fs.Sub(data.CloudInit, "cloud-init")
	if err != nil {
		return nil, fmt.Errorf("reading embedded cloud-init templates: %w", err)
	}
	if _, err := root.ParseFS(sub, "*.tmpl"); err != nil {
		return nil, fmt.Errorf("parsing embedded cloud-init templates: %w", err)
	}
	return root, nil
}
