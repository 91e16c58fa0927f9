package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"

	"github.com/stackgate/stackgate/tunnel"
)

// ErrUnauthorized is wrapped by errors for credentials keystone refuses (HTTP 401).
var ErrUnauthorized = errors.New("keystone refused the credentials (HTTP 401)")

// ErrUnreachable is wrapped by errors for a controller that cannot be reached over SSH.
var ErrUnreachable = errors.New("controller unreachable")

// connState is what one process opened for an Environment: its tunnel and
// the clients of each cloud. It is never serialised.
type connState struct {
	mu      sync.Mutex
	tun     *tunnel.Tunnel
	clients map[string]*Clients
	log     logr.Logger
}

// connInit guards the creation of every Environment's connState.
var connInit sync.Mutex

func (e *Environment) state() *connState {
	connInit.Lock()
	defer connInit.Unlock()
	if e.conn == nil {
		e.conn = &connState{clients: map[string]*Clients{}, log: logr.Discard()}
	}
	return e.conn
}

// setLogger sets where the environment's tunnel and waits log (default:
// nowhere): the logger Up was given (WithLogger).
func (e *Environment) setLogger(l logr.Logger) { e.state().log = l }

// TunnelOption changes the tunnel configuration Environment.Tunnel builds.
type TunnelOption func(*tunnel.Config)

// TunnelConfig returns the configuration of a tunnel to the controller: the
// environment's SSH endpoint, its pinned host key and Config.Routes().
func (e *Environment) TunnelConfig(opts ...TunnelOption) tunnel.Config {
	cfg := tunnel.Config{
		Address:    e.SSH.Address,
		User:       e.SSH.User,
		PrivateKey: e.SSH.PrivateKey,
		HostKey:    []byte(e.SSH.HostKey),
		Routes:     e.Config.Routes(),
		Logger:     e.state().log,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Tunnel opens a new tunnel to the controller; the caller closes it.
func (e *Environment) Tunnel(ctx context.Context, opts ...TunnelOption) (*tunnel.Tunnel, error) {
	cfg := e.TunnelConfig(opts...)
	t, err := tunnel.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: ssh %s@%s: %w; check that the controller runs, its sshd listens there and the host key and user key match", ErrUnreachable, cfg.User, cfg.Address, err)
	}
	return t, nil
}

// sharedTunnel returns the tunnel the environment's own clients use, opening it once.
func (e *Environment) sharedTunnel(ctx context.Context) (*tunnel.Tunnel, error) {
	s := e.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tun != nil {
		return s.tun, nil
	}
	t, err := e.Tunnel(ctx)
	if err != nil {
		return nil, err
	}
	s.tun = t
	return t, nil
}

// Close closes the tunnel the environment's clients use. It does not touch
// the environment itself (see Host.Down for that).
func (e *Environment) Close() error {
	s := e.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients = map[string]*Clients{}
	if s.tun == nil {
		return nil
	}
	err := s.tun.Close()
	s.tun = nil
	return err
}

// ProviderClient authenticates as the clouds.yaml entry called cloud, with
// gophercloud/utils' clientconfig reading Environment.CloudsYAML from memory.
// Its HTTP goes through the environment's tunnel (see Close).
func (e *Environment) ProviderClient(ctx context.Context, cloud string) (*gophercloud.ProviderClient, error) {
	pc, _, err := e.providerClient(ctx, cloud)
	return pc, err
}

func (e *Environment) providerClient(ctx context.Context, cloud string) (*gophercloud.ProviderClient, clientconfig.Cloud, error) {
	cy, err := ParseCloudsYAML(e.CloudsYAML)
	if err != nil {
		return nil, clientconfig.Cloud{}, err
	}
	opts, err := cy.ClientOpts(cloud)
	if err != nil {
		return nil, clientconfig.Cloud{}, err
	}
	entry, err := clientconfig.GetCloudFromYAML(opts)
	if err != nil {
		return nil, clientconfig.Cloud{}, fmt.Errorf("clouds.yaml: cloud %q: %w", cloud, err)
	}
	ao, err := clientconfig.AuthOptions(opts)
	if err != nil {
		return nil, clientconfig.Cloud{}, fmt.Errorf("clouds.yaml: cloud %q: %w", cloud, err)
	}
	ao.AllowReauth = true
	tlsConfig, err := e.tlsConfig(entry)
	if err != nil {
		return nil, clientconfig.Cloud{}, err
	}
	tun, err := e.sharedTunnel(ctx)
	if err != nil {
		return nil, clientconfig.Cloud{}, err
	}
	pc, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, clientconfig.Cloud{}, fmt.Errorf("clouds.yaml: cloud %q: auth.auth_url %q: %w", cloud, ao.IdentityEndpoint, err)
	}
	pc.HTTPClient = http.Client{Transport: &http.Transport{
		DialContext:         tun.DialContext,
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// An API that has not answered a request within this time is stuck:
		// fail the call instead of waiting for the caller's deadline, if any.
		ResponseHeaderTimeout: APIResponseTimeout,
	}}
	if err := openstack.Authenticate(ctx, pc, *ao); err != nil {
		if gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			who := ao.Username
			if who == "" {
				who = ao.UserID + ao.ApplicationCredentialID + ao.ApplicationCredentialName
			}
			return nil, clientconfig.Cloud{}, fmt.Errorf("cloud %q: %w for user %q at %s; check auth.username, auth.password and the project in clouds.yaml", cloud, ErrUnauthorized, who, ao.IdentityEndpoint)
		}
		return nil, clientconfig.Cloud{}, fmt.Errorf("cloud %q: authenticating at %s: %w", cloud, ao.IdentityEndpoint, err)
	}
	return pc, *entry, nil
}

func (e *Environment) tlsConfig(entry *clientconfig.Cloud) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if entry.Verify != nil && !*entry.Verify {
		cfg.InsecureSkipVerify = true //nolint:gosec // the clouds.yaml asks for it (verify: false)
	}
	ca := e.CACert
	if len(ca) == 0 && entry.CACertFile != "" {
		b, err := os.ReadFile(entry.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("clouds.yaml: cacert %q: %w; set Environment.CACert or fix the path", entry.CACertFile, err)
		}
		ca = b
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("CA bundle holds no PEM certificate; pass the PEM file clouds.yaml's cacert names")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// APIResponseTimeout bounds how long a provider client from ProviderClient
// waits for an OpenStack API to start answering a request.
const APIResponseTimeout = 2 * time.Minute

// Clients are the service clients of one cloud of the environment.
type Clients struct {
	// Cloud is the clouds.yaml entry the clients authenticated as.
	Cloud string
	// Region is the region the service clients use.
	Region string
	// Provider is the authenticated provider client.
	Provider *gophercloud.ProviderClient
	// Identity is keystone v3.
	Identity *gophercloud.ServiceClient
	// Compute is nova v2.1.
	Compute *gophercloud.ServiceClient
	// Network is neutron v2.0.
	Network *gophercloud.ServiceClient
	// BlockStorage is cinder v3.
	BlockStorage *gophercloud.ServiceClient
	// Image is glance v2.
	Image *gophercloud.ServiceClient
	// LoadBalancer is octavia v2; nil when the catalog has no load-balancer service.
	LoadBalancer *gophercloud.ServiceClient
}

// Clients returns the service clients of the clouds.yaml entry called cloud,
// authenticating once per process (tokens are renewed when they expire).
func (e *Environment) Clients(ctx context.Context, cloud string) (*Clients, error) {
	s := e.state()
	s.mu.Lock()
	c := s.clients[cloud]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	pc, entry, err := e.providerClient(ctx, cloud)
	if err != nil {
		return nil, err
	}
	c, err = newClients(cloud, entry.RegionName, pc)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.clients[cloud] = c
	s.mu.Unlock()
	return c, nil
}

func newClients(cloud, region string, pc *gophercloud.ProviderClient) (*Clients, error) {
	eo := gophercloud.EndpointOpts{Region: region}
	c := &Clients{Cloud: cloud, Region: region, Provider: pc}
	var errs []error
	must := func(name string, f func(*gophercloud.ProviderClient, gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error)) *gophercloud.ServiceClient {
		sc, err := f(pc, eo)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return sc
	}
	c.Identity = must("identity", openstack.NewIdentityV3)
	c.Compute = must("compute", openstack.NewComputeV2)
	c.Network = must("network", openstack.NewNetworkV2)
	c.BlockStorage = must("volumev3", openstack.NewBlockStorageV3)
	c.Image = must("image", openstack.NewImageV2)
	if lb, err := openstack.NewLoadBalancerV2(pc, eo); err == nil {
		c.LoadBalancer = lb
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cloud %q: service catalog in region %q: %w", cloud, region, err)
	}
	return c, nil
}
