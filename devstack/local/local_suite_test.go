//go:build linux

package local_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/tunnel"
)

func TestLocal(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "devstack/local")
}

// host, env and tun are the shared environment (the default instance, or
// $STACKGATE_LOCAL_INSTANCE) of the specs that use it: the first of them
// brings it up or attaches to it (needEnv), the suite's end closes the
// connections. Specs of pure logic never touch it and run without root.
var (
	host *local.Host
	env  *devstack.Environment
	tun  *tunnel.Tunnel
)

// needRoot skips a spec that builds network namespaces when not root.
func needRoot() {
	if os.Geteuid() != 0 {
		Skip("the local host needs root (network namespaces)")
	}
}

// needEnv brings the shared environment up unless it is, or skips the spec
// where it cannot be (not root).
func needEnv(ctx SpecContext) {
	needRoot()
	if tun != nil {
		return
	}
	if host == nil {
		host = must(local.New(instance(local.WithOutput(GinkgoWriter))...))
	}
	if env == nil {
		var err error
		env, err = host.Up(ctx, devstack.DefaultConfig())
		Expect(err).NotTo(HaveOccurred(), "bringing the default local environment up")
	}
	tun = dialTunnel(ctx, env)
}

var _ = AfterSuite(func() {
	if tun != nil {
		Expect(tun.Close()).To(Succeed())
	}
	if env != nil {
		Expect(env.Close()).To(Succeed()) // the connections its waits open
	}
})

// instance adds to opts the instance $STACKGATE_LOCAL_INSTANCE names, when
// set: the suite then runs on that instance instead of the default one.
func instance(opts ...local.Option) []local.Option {
	if name := os.Getenv("STACKGATE_LOCAL_INSTANCE"); name != "" {
		opts = append(opts, local.WithInstance(name))
	}
	return opts
}

// openTunnel opens a tunnel to env's controller, closed after the spec or
// container that opened it.
func openTunnel(ctx context.Context, env *devstack.Environment) *tunnel.Tunnel {
	t := dialTunnel(ctx, env)
	DeferCleanup(t.Close)
	return t
}

// dialTunnel opens a tunnel to env's controller; the caller closes it.
func dialTunnel(ctx context.Context, env *devstack.Environment) *tunnel.Tunnel {
	t, err := tunnel.Open(ctx, tunnel.Config{
		Address:    env.SSH.Address,
		User:       env.SSH.User,
		PrivateKey: env.SSH.PrivateKey,
		HostKey:    []byte(env.SSH.HostKey),
		Routes:     env.Config.Routes(),
	})
	Expect(err).NotTo(HaveOccurred(), "opening a tunnel to %s", env.SSH.Address)
	return t
}

// cloudClient authenticates as the clouds.yaml entry cloud of env, through t.
func cloudClient(ctx context.Context, env *devstack.Environment, t *tunnel.Tunnel, cloud string) *gophercloud.ProviderClient {
	var clouds clientconfig.Clouds
	Expect(yaml.Unmarshal(env.CloudsYAML, &clouds)).To(Succeed(), "parsing clouds.yaml")
	c, ok := clouds.Clouds[cloud]
	Expect(ok).To(BeTrue(), "clouds.yaml has no cloud %q", cloud)
	pc, err := openstack.NewClient(c.AuthInfo.AuthURL)
	Expect(err).NotTo(HaveOccurred())
	pc.HTTPClient = *t.HTTPClient()
	err = openstack.Authenticate(ctx, pc, gophercloud.AuthOptions{
		IdentityEndpoint: c.AuthInfo.AuthURL,
		Username:         c.AuthInfo.Username,
		Password:         c.AuthInfo.Password,
		DomainName:       c.AuthInfo.UserDomainName,
		Scope:            &gophercloud.AuthScope{ProjectName: c.AuthInfo.ProjectName, DomainName: c.AuthInfo.ProjectDomainName},
	})
	Expect(err).NotTo(HaveOccurred(), "authenticating as cloud %q at %s", cloud, c.AuthInfo.AuthURL)
	return pc
}

func eo() gophercloud.EndpointOpts { return gophercloud.EndpointOpts{Region: "RegionOne"} }

func must[T any](v T, err error) T {
	GinkgoHelper()
	Expect(err).NotTo(HaveOccurred())
	return v
}

func name(what string) string { return fmt.Sprintf("stackgate-test-%s-%d", what, GinkgoRandomSeed()) }

// serverStatus polls a server's status for Eventually, stopping at ERROR
// with nova's fault.
func serverStatus(c *gophercloud.ServiceClient, id string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		s, err := servers.Get(ctx, c, id).Extract()
		if err != nil {
			return "", err
		}
		if s.Status == "ERROR" {
			return s.Status, StopTrying(fmt.Sprintf("server %s went to ERROR: %v", s.ID, s.Fault))
		}
		return s.Status, nil
	}
}
