package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Host creates and removes the machines of an environment: a controller
// running every OpenStack API and a worker that joins later in the alternate
// availability zone. Implementations: devstack/local (network namespaces on
// this machine) and Existing (an environment that already runs). A host that
// boots DevStack VMs (as CAPO's OpenStack and GCE jobs do) can implement it
// with devstack/cloudinit's user-data.
type Host interface {
	// Name identifies the kind of host ("local", "existing", ...).
	Name() string
	// Up creates the controller and the worker, or reuses a healthy running
	// pair, and returns once the controller's API answers. The worker may
	// still be joining when Up returns.
	Up(ctx context.Context, cfg Config) (*Environment, error)
	// Down deletes everything Up created.
	Down(ctx context.Context) error
}

// Environment is a running DevStack as a host hands it back. It serialises to
// JSON so one process can bring it up and others attach to it; the JSON holds
// credentials (the SSH private key and clouds.yaml) and must never be written
// to logs or artifacts.
type Environment struct {
	// Config is the validated configuration the environment was built from.
	Config Config `json:"config"`
	// Host is the Name of the host that built the environment.
	Host string `json:"host"`
	// Controller runs every API; its endpoints use its private address.
	Controller Node `json:"controller"`
	// Worker runs a second compute and volume service in Config.FailureDomainAlt.
	Worker Node `json:"worker"`
	// SSH is how the test runner reaches the controller.
	SSH SSHEndpoint `json:"ssh"`
	// CloudsYAML is a clouds.yaml with the clouds Config.Cloud and Config.CloudAdmin.
	CloudsYAML []byte `json:"cloudsYAML"`
	// CACert is the PEM bundle clouds.yaml refers to, if the API uses TLS.
	CACert []byte `json:"caCert,omitempty"`
	// StateDir is where a local host keeps logs, configs and pid files; empty for remote hosts.
	StateDir string `json:"stateDir,omitempty"`
	// FakeServers says that servers are records only: the compute driver
	// (nova's fake driver, the local host with STACKGATE_LOCAL_VIRT=fake)
	// boots nothing, so no server has a console, reads its user-data or
	// answers SSH. False for real clouds and the local host's real VMs.
	FakeServers bool `json:"fakeServers,omitempty"`

	// conn holds the tunnel and clients opened from this process; never serialised.
	conn *connState `json:"-"`
}

// Node is one machine of the environment.
type Node struct {
	// Name is the node's host name as OpenStack services report it.
	Name string `json:"name"`
	// PrivateIP is the node's address on Config.PrivateNetworkCIDR.
	PrivateIP netip.Addr `json:"privateIP"`
	// AvailabilityZone is the nova and cinder zone of the node's services.
	AvailabilityZone string `json:"availabilityZone"`
	// HostKey is the node's SSH host key as an authorized_keys line, when the
	// host knows it; log collection from remote hosts pins it.
	HostKey string `json:"hostKey,omitempty"`
}

// SSHEndpoint is what a tunnel needs to reach the controller.
type SSHEndpoint struct {
	// Address is the controller's public host:port.
	Address string `json:"address"`
	// User is the SSH login.
	User string `json:"user"`
	// PrivateKey is the user's private key, PEM encoded (OpenSSH format).
	PrivateKey []byte `json:"privateKey,omitempty"`
	// HostKey is the controller's host key in authorized_keys format
	// ("ssh-ed25519 AAAA..."); the tunnel pins it.
	HostKey string `json:"hostKey"`
}

// Marshal serialises the environment for another process (see
// UnmarshalEnvironment).
func (e *Environment) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("serialising environment: %w", err)
	}
	return b, nil
}

// UnmarshalEnvironment reads an environment serialised by Marshal and checks
// that it names a controller that can be reached.
func UnmarshalEnvironment(data []byte) (*Environment, error) {
	var e Environment
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("reading serialised environment: %w", err)
	}
	if e.SSH.Address == "" {
		return nil, fmt.Errorf("serialised environment has no ssh.address; it was not produced by Environment.Marshal")
	}
	if len(e.CloudsYAML) == 0 {
		return nil, fmt.Errorf("serialised environment has no cloudsYAML; it was not produced by Environment.Marshal")
	}
	e.Config = e.Config.WithDefaults()
	return &e, nil
}
