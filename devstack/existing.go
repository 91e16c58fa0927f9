package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Existing is a host for an environment that already runs: nothing is
// created or deleted; the user gives its clouds.yaml and how to reach the
// controller over SSH.
type Existing struct {
	// CloudsYAML holds the clouds Config.Cloud and Config.CloudAdmin.
	CloudsYAML []byte
	// CACert is the PEM bundle the clouds.yaml's cacert names, if the API uses TLS.
	CACert []byte
	// Address is the controller's sshd as host:port.
	Address string
	// User is the SSH login on the controller.
	User string
	// PrivateKey is the user's PEM-encoded private key (no passphrase).
	PrivateKey []byte
	// HostKey is the controller's host key as an authorized_keys line; it is pinned.
	HostKey string
	// ControllerName and WorkerName are the nodes' host names as OpenStack
	// services report them (optional; used to label logs).
	ControllerName, WorkerName string
	// Names are what the user set the fields as, for Validate's errors.
	Names ExistingNames
}

// ExistingNames are the names under which a user gave an Existing host's
// settings (environment variables, flags), so that errors name what the
// user set. An empty name stands for the Existing field's own name.
type ExistingNames struct {
	CloudsYAML, CACert, Address, User, PrivateKey, HostKey string
}

// fieldName returns the user's name for an Existing field, or the field's own.
func fieldName(given, field string) string {
	if given != "" {
		return given
	}
	return field
}

// fieldError prefixes err with the user's name for the field it is about, if
// there is one.
func fieldError(given string, err error) error {
	if given == "" {
		return err
	}
	return fmt.Errorf("%s: %w", given, err)
}

var _ Host = (*Existing)(nil)

// ExistingFiles says where ExistingFromFiles finds an Existing host's
// settings.
type ExistingFiles struct {
	// CloudsYAML is the path of the clouds.yaml.
	CloudsYAML string
	// CACert is the path of the CA bundle the clouds.yaml's cacert names (optional).
	CACert string
	// Address is the controller's sshd as host:port.
	Address string
	// User is the SSH login on the controller.
	User string
	// PrivateKey is the path of the user's private key.
	PrivateKey string
	// HostKey is the controller's host key: an authorized_keys line, a line
	// as ssh-keyscan prints it, or the path of a file holding such lines.
	HostKey string
	// Names are what the user set these as; errors name them.
	Names ExistingNames
}

// ExistingFromFiles reads an Existing host's clouds.yaml, optional CA
// bundle, private key and host key from files. The host keeps f.Names for
// Validate.
func ExistingFromFiles(f ExistingFiles) (*Existing, error) {
	e := &Existing{Address: f.Address, User: f.User, Names: f.Names}
	var errs []error
	read := func(what, path string, dst *[]byte) {
		if path == "" {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("existing host: %s: %w", what, err))
			return
		}
		*dst = b
	}
	read(fieldName(f.Names.CloudsYAML, "clouds.yaml"), f.CloudsYAML, &e.CloudsYAML)
	read(fieldName(f.Names.CACert, "CA bundle"), f.CACert, &e.CACert)
	read(fieldName(f.Names.PrivateKey, "private key"), f.PrivateKey, &e.PrivateKey)
	hostKeyName := fieldName(f.Names.HostKey, "host key")
	if line, ok := hostKeyLine([]byte(f.HostKey)); ok {
		e.HostKey = line
	} else if strings.ContainsAny(strings.TrimSpace(f.HostKey), " \t") {
		e.HostKey = f.HostKey // a key line that does not parse: Validate says so
	} else if f.HostKey != "" {
		var b []byte
		read(hostKeyName, f.HostKey, &b)
		if line, ok := hostKeyLine(b); ok {
			e.HostKey = line
		} else if b != nil {
			errs = append(errs, fmt.Errorf("existing host: %s: %s holds no SSH public key: write the controller's key into it as an authorized_keys line or as ssh-keyscan prints it", hostKeyName, f.HostKey))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// hostKeyLine finds the host key in text: authorized_keys lines ("ssh-ed25519
// AAAA...") or known_hosts lines as ssh-keyscan prints them ("203.0.113.5
// ssh-ed25519 AAAA..."), comments allowed. Of several keys it takes the
// Ed25519 one if there is one, else the first. It returns the key as an
// authorized_keys line.
func hostKeyLine(text []byte) (string, bool) {
	var found []ssh.PublicKey
	for _, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if _, _, key, _, _, err := ssh.ParseKnownHosts(line); err == nil {
			found = append(found, key)
		} else if key, _, _, _, err := ssh.ParseAuthorizedKey(line); err == nil {
			found = append(found, key)
		}
	}
	if len(found) == 0 {
		return "", false
	}
	pick := found[0]
	for _, k := range found {
		if k.Type() == ssh.KeyAlgoED25519 {
			pick = k
			break
		}
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pick))), true
}

// Name returns "existing".
func (x *Existing) Name() string { return "existing" }

// Validate checks every field against cfg and reports each problem with its
// fix: the clouds.yaml must parse and hold cfg.Cloud and cfg.CloudAdmin, the
// address must be host:port, the keys must parse.
func (x *Existing) Validate(cfg Config) error {
	cfg = cfg.WithDefaults()
	var errs []error
	n := x.Names
	if len(x.CloudsYAML) == 0 {
		errs = append(errs, fmt.Errorf("%s is empty: pass the clouds.yaml of the environment", fieldName(n.CloudsYAML, "CloudsYAML")))
	} else if cy, err := ParseCloudsYAML(x.CloudsYAML); err != nil {
		errs = append(errs, fieldError(n.CloudsYAML, err))
	} else {
		for _, cloud := range []string{cfg.Cloud, cfg.CloudAdmin} {
			if _, err := cy.Cloud(cloud); err != nil {
				errs = append(errs, fieldError(n.CloudsYAML, fmt.Errorf("%w (set OPENSTACK_CLOUD / OPENSTACK_CLOUD_ADMIN to clouds that exist)", err)))
			}
		}
	}
	address := fieldName(n.Address, "Address")
	if x.Address == "" {
		errs = append(errs, fmt.Errorf("%s is empty: set it to the controller's sshd as host:port, e.g. 203.0.113.5:22", address))
	} else if _, _, err := net.SplitHostPort(x.Address); err != nil {
		errs = append(errs, fmt.Errorf("%s %q is not host:port: add the port, e.g. %s:22", address, x.Address, x.Address))
	}
	if x.User == "" {
		errs = append(errs, fmt.Errorf("%s is empty: set the SSH login on the controller", fieldName(n.User, "User")))
	}
	privateKey := fieldName(n.PrivateKey, "PrivateKey")
	if len(x.PrivateKey) == 0 {
		errs = append(errs, fmt.Errorf("%s is empty: pass the PEM private key the controller accepts", privateKey))
	} else if _, err := ssh.ParsePrivateKey(x.PrivateKey); err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			errs = append(errs, fmt.Errorf("%s is protected by a passphrase: pass a key without one", privateKey))
		} else {
			errs = append(errs, fmt.Errorf("%s cannot be parsed (%v): pass a PEM-encoded OpenSSH or PKCS#8 private key", privateKey, err))
		}
	}
	hostKey := fieldName(n.HostKey, "HostKey")
	if x.HostKey == "" {
		errs = append(errs, fmt.Errorf("%s is empty: pass the controller's host key as an authorized_keys line (ssh-keyscan prints it)", hostKey))
	} else if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(x.HostKey)); err != nil {
		errs = append(errs, fmt.Errorf("%s cannot be parsed (%v): pass an authorized_keys line such as \"ssh-ed25519 AAAA...\"", hostKey, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("existing host: %w", err)
	}
	return nil
}

// Up validates the host, checks that the controller answers over SSH and
// returns the environment. It creates nothing.
func (x *Existing) Up(ctx context.Context, cfg Config) (*Environment, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := x.Validate(cfg); err != nil {
		return nil, err
	}
	env := &Environment{
		Config:     cfg,
		Host:       x.Name(),
		Controller: Node{Name: x.ControllerName, PrivateIP: cfg.ControllerIP, AvailabilityZone: cfg.FailureDomain},
		Worker:     Node{Name: x.WorkerName, PrivateIP: cfg.WorkerIP, AvailabilityZone: cfg.FailureDomainAlt},
		SSH: SSHEndpoint{
			Address:    x.Address,
			User:       x.User,
			PrivateKey: x.PrivateKey,
			HostKey:    strings.TrimSpace(x.HostKey),
		},
		CloudsYAML: x.CloudsYAML,
		CACert:     x.CACert,
	}
	t, err := env.Tunnel(ctx)
	if err != nil {
		return nil, fmt.Errorf("existing host: %w", err)
	}
	if err := t.Close(); err != nil {
		return nil, fmt.Errorf("existing host: closing the test connection: %w", err)
	}
	return env, nil
}

// Down does nothing: an existing environment belongs to its user.
func (x *Existing) Down(context.Context) error { return nil }
