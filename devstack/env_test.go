//go:build linux

package devstack_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	blockservices "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	computeservices "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gopkg.in/gcfg.v1"
	yaml "gopkg.in/yaml.v3"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

// attachLocal attaches to the default local environment (bringing it up if
// nothing runs yet). Tests never call Down on it: it is shared.
func attachLocal(ctx context.Context) *devstack.Environment {
	GinkgoHelper()
	host, err := local.New(local.WithOutput(GinkgoWriter))
	Expect(err).NotTo(HaveOccurred())
	raw, err := host.Up(ctx, devstack.DefaultConfig())
	Expect(err).NotTo(HaveOccurred(), "attaching to the local environment")
	data, err := raw.Marshal()
	Expect(err).NotTo(HaveOccurred())
	env, err := devstack.Up(ctx, devstack.DefaultConfig(), nil, devstack.WithAttach(data), devstack.WithLogger(GinkgoLogr))
	Expect(err).NotTo(HaveOccurred())
	// Up returns while the worker still registers. The specs look at a
	// settled environment: a spec that times a wait out must not race the
	// APIs' start.
	Expect(env.Wait(ctx, devstack.ForAvailabilityZone(env.Config.FailureDomain))).To(Succeed())
	Expect(env.WaitForSecondAZ(ctx)).To(Succeed())
	return env
}

// shared is the attached local environment, shared by the specs of this process.
var shared *devstack.Environment

var _ = Describe("a running environment", Label("local"), func() {
	var env *devstack.Environment
	BeforeEach(func(ctx SpecContext) {
		if os.Geteuid() != 0 {
			Skip("the local environment needs root (network namespaces); the specs of pure logic run without it")
		}
		if shared == nil {
			shared = attachLocal(ctx)
		}
		env = shared
	}, NodeTimeout(20*time.Minute))

	Context("waits", func() {
		It("pass on the running environment", func(ctx SpecContext) {
			Expect(env.Wait(ctx,
				devstack.ForKeystoneToken().WithTimeout(time.Minute),
				devstack.ForCatalog("identity", "compute", "network", "volumev3", "image", "placement").WithTimeout(time.Minute),
				devstack.ForComputeServices(1).WithTimeout(time.Minute),
				devstack.ForNetworkAgents().WithTimeout(2*time.Minute),
				devstack.ForAvailabilityZone("testaz1").WithTimeout(time.Minute),
			)).To(Succeed())
		}, SpecTimeout(6*time.Minute))

		DescribeTable("time out saying what they waited for and what they saw",
			func(ctx SpecContext, s func(*devstack.Environment) (*devstack.Environment, devstack.Strategy), what string, seen ...string) {
				target, strategy := s(env)
				err := strategy.WaitUntilReady(ctx, target)
				var te *devstack.WaitTimeoutError
				Expect(errors.As(err, &te)).To(BeTrue(), "error: %v", err)
				Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "its own timeout ended it")
				Expect(te.Waited).To(BeNumerically(">=", 15*time.Second), "it waited out the timeout every entry sets")
				Expect(err.Error()).To(HavePrefix("timed out after "))
				Expect(te.What).To(ContainSubstring(what))
				for _, s := range seen {
					Expect(te.LastSeen).To(ContainSubstring(s))
				}
				Expect(err.Error()).To(ContainSubstring("last seen: " + te.LastSeen))
			},
			Entry("an availability zone that does not exist", func(e *devstack.Environment) (*devstack.Environment, devstack.Strategy) {
				return e, devstack.ForAvailabilityZone("nosuchaz").WithTimeout(15 * time.Second)
			}, `availability zone "nosuchaz"`, "no zone nosuchaz (zones: [", "testaz1", "cinder-volume in nosuchaz: []"),
			Entry("a service the catalog lacks", func(e *devstack.Environment) (*devstack.Environment, devstack.Strategy) {
				return e, devstack.ForCatalog("compute", "nosuchservice").WithTimeout(15 * time.Second)
			}, "service catalog with compute, nosuchservice", "missing [nosuchservice]", "compute"),
			Entry("more compute services than exist", func(e *devstack.Environment) (*devstack.Environment, devstack.Strategy) {
				return e, devstack.ForComputeServices(99).WithTimeout(15 * time.Second)
			}, "99 nova-compute services up and enabled", "of 99 wanted up and enabled", "testaz1"),
			Entry("network agents as a member, to whom neutron shows none", func(e *devstack.Environment) (*devstack.Environment, devstack.Strategy) {
				return e, devstack.ForNetworkAgents().WithCloud(e.Config.Cloud).WithTimeout(15 * time.Second)
			}, "every neutron agent alive", "no network agents registered"),
			Entry("a keystone nobody listens for", func(e *devstack.Environment) (*devstack.Environment, devstack.Strategy) {
				return withCloudsYAML(e, strings.ReplaceAll(string(e.CloudsYAML), ":5000", ":5999")), devstack.ForKeystoneToken().WithTimeout(15 * time.Second)
			}, "a keystone token", "error: ", "5999"),
		)

		It("name the API's error and, with it, what the last check that answered saw", func(ctx SpecContext) {
			// keystone behind a loopback proxy that answers the first token
			// request and then returns 503, as an API does while it restarts.
			proxy, keystone := keystoneProxy(ctx, env)
			var tokens atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/auth/tokens") && tokens.Add(1) > 1 {
					http.Error(w, "keystone is restarting", http.StatusServiceUnavailable)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			DeferCleanup(srv.Close)
			e := withCloudsYAML(env, strings.ReplaceAll(string(env.CloudsYAML), keystone.Scheme+"://"+keystone.Host, srv.URL))

			err := devstack.ForCatalog("compute", "nosuchservice").WithTimeout(15*time.Second).WaitUntilReady(ctx, e)
			var te *devstack.WaitTimeoutError
			Expect(errors.As(err, &te)).To(BeTrue(), "error: %v", err)
			Expect(tokens.Load()).To(BeNumerically(">=", 2), "it checked again after the answer")
			Expect(te.LastSeen).To(HavePrefix("error: "))
			Expect(te.LastSeen).To(ContainSubstring("503"))
			Expect(te.LastSeen).To(MatchRegexp(`\(the last check that answered saw: catalog has \[.*compute.*\], missing \[nosuchservice\]\)$`))
		}, SpecTimeout(2*time.Minute))

		It("stop at once on a 401 and name the user", func(ctx SpecContext) {
			bad := withCloudsYAML(env, replacePassword(env.CloudsYAML, env.Config.CloudAdmin, "wrong-password"))
			err := devstack.ForKeystoneToken().WithTimeout(time.Minute).WaitUntilReady(ctx, bad)
			Expect(err).To(MatchError(devstack.ErrUnauthorized))
			Expect(err.Error()).To(ContainSubstring(`user "admin"`))
			Expect(err.Error()).To(ContainSubstring("check auth.username, auth.password"))
			// Had it retried the 401, the timeout would have ended it.
			var te *devstack.WaitTimeoutError
			Expect(errors.As(err, &te)).To(BeFalse(), "a 401 ends the wait at once, not at its timeout: %v", err)
			Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse())
		}, SpecTimeout(2*time.Minute))

		// Serial: it forces the shared environment's testaz2 down for a while.
		It("WaitForSecondAZ returns only once the worker's zone is up", Serial, func(ctx SpecContext) {
			c, err := env.Clients(ctx, env.Config.CloudAdmin)
			Expect(err).NotTo(HaveOccurred())
			compute := *c.Compute
			compute.Microversion = "2.53" // services by UUID
			// The zone is up (attachLocal waited for it): the wait passes at once.
			Expect(env.WaitForSecondAZ(ctx)).To(Succeed())
			Expect(workerUp(ctx, c, "testaz2")).To(Succeed())

			// Force the worker's nova-compute down: the zone must no longer count.
			svc := workerCompute(ctx, c, "testaz2")
			_, err = computeservices.Update(ctx, &compute, svc.ID, forcedDown(true)).Extract()
			Expect(err).NotTo(HaveOccurred())
			enabled := false
			enable := func(ctx context.Context) {
				if !enabled {
					_, err := computeservices.Update(ctx, &compute, svc.ID, forcedDown(false)).Extract()
					Expect(err).NotTo(HaveOccurred())
					enabled = true
				}
			}
			DeferCleanup(func(ctx SpecContext) { enable(ctx) }, NodeTimeout(time.Minute))

			// Room for a first check on a loaded machine: the zone stays down
			// for the whole wait, whatever its length.
			short, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err = env.WaitForSecondAZ(short)
			Expect(err).To(MatchError(ContainSubstring(`availability zone "testaz2"`)))
			Expect(err).To(MatchError(ContainSubstring("compute hosts [worker available=false active=true]")), "the message says what it saw")

			done := make(chan error, 1)
			go func() { done <- env.WaitForSecondAZ(ctx) }()
			Consistently(done, 2*time.Second, 200*time.Millisecond).ShouldNot(Receive(), "returned while the worker's compute was down")
			enable(ctx)
			var werr error
			// Bounds a hang only; how fast the zone is seen is measured by
			// BenchmarkSecondAZDetection.
			Eventually(done, time.Minute).Should(Receive(&werr))
			Expect(werr).NotTo(HaveOccurred())
			Expect(workerUp(ctx, c, "testaz2")).To(Succeed())
		}, SpecTimeout(10*time.Minute))
	})

	It("gives template variables that decode to the environment's settings", func(ctx SpecContext) {
		v, err := env.Variables(ctx)
		Expect(err).NotTo(HaveOccurred())
		c, err := env.Clients(ctx, env.Config.CloudAdmin)
		Expect(err).NotTo(HaveOccurred())
		ext, err := networks.Get(ctx, c.Network, v[devstack.VarExternalNetworkID]).Extract()
		Expect(err).NotTo(HaveOccurred())
		Expect(ext.Name).To(Equal("public"))
		Expect(v[devstack.VarFailureDomain]).To(Equal("testaz1"))
		Expect(v[devstack.VarFailureDomainAlt]).To(Equal("testaz2"))

		cy, err := devstack.ParseCloudsYAML(env.CloudsYAML)
		Expect(err).NotTo(HaveOccurred())
		want, err := cy.Cloud(env.Config.Cloud)
		Expect(err).NotTo(HaveOccurred())

		yb, err := base64.StdEncoding.DecodeString(v[devstack.VarCloudYAMLB64])
		Expect(err).NotTo(HaveOccurred())
		single, err := devstack.ParseCloudsYAML(yb)
		Expect(err).NotTo(HaveOccurred())
		Expect(single.Names()).To(Equal([]string{env.Config.Cloud}))

		conf, err := base64.StdEncoding.DecodeString(v[devstack.VarCloudProviderConfB64])
		Expect(err).NotTo(HaveOccurred())
		// Read it as the OpenStack cloud provider does (gcfg).
		var pc providerConf
		Expect(gcfg.ReadStringInto(&pc, string(conf))).To(Succeed())
		Expect(pc.Global.AuthURL).To(Equal(want.AuthInfo.AuthURL))
		Expect(pc.Global.Username).To(Equal(want.AuthInfo.Username))
		Expect(pc.Global.Password).To(Equal(want.AuthInfo.Password))
		Expect(pc.Global.TenantName).To(Equal(want.AuthInfo.ProjectName))
		Expect(pc.Global.DomainName).To(Equal(want.AuthInfo.UserDomainName))
		Expect(pc.Global.Region).To(Equal(want.RegionName))
		Expect(pc.Global.CAFile).To(BeEmpty(), "the local environment has no TLS")
		Expect(v.String()).NotTo(ContainSubstring(want.AuthInfo.Password))
	})

	It("collects one tarball per node with every service log and no password", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		tarballs, err := env.CollectLogs(ctx, dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(tarballs).To(ConsistOf(filepath.Join(dir, "controller.tar.gz"), filepath.Join(dir, "worker.tar.gz")))

		files := map[string][]byte{}
		for _, t := range tarballs {
			for name, b := range readTarball(t) {
				files[name] = b
			}
		}
		logs, err := filepath.Glob(filepath.Join(env.StateDir, "logs", "*.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(logs).NotTo(BeEmpty())
		for _, l := range logs {
			base := filepath.Base(l)
			node := "controller"
			if strings.HasSuffix(strings.TrimSuffix(base, ".log"), "-worker") {
				node = "worker"
			}
			Expect(files).To(HaveKey(node+"/logs/"+base), "log of %s", base)
		}
		for _, dump := range []string{"servers", "networks", "subnets", "routers", "ports", "floating-ips", "security-groups", "volumes", "load-balancers", "compute-availability-zones", "volume-availability-zones", "hypervisors", "compute-services", "volume-services", "network-agents"} {
			Expect(files).To(HaveKey("controller/openstack/" + dump + ".json"))
		}
		Expect(files).To(HaveKey("controller/etc/nova/nova.conf"))

		// Every password: those of clouds.yaml and every credential in the configuration.
		passwords := cloudPasswords(env.CloudsYAML)
		for name, b := range files {
			if strings.HasPrefix(name, "controller/etc/") || strings.HasPrefix(name, "worker/etc/") {
				Expect(string(b)).NotTo(MatchRegexp(`(?m)^\s*password\s*=\s*[^<\s]`), "a password in %s", name)
			}
		}
		confs, _ := filepath.Glob(filepath.Join(env.StateDir, "etc", "*.conf"))
		more, _ := filepath.Glob(filepath.Join(env.StateDir, "etc", "*", "*.conf"))
		for _, c := range append(confs, more...) {
			b, err := os.ReadFile(c)
			Expect(err).NotTo(HaveOccurred())
			passwords = append(passwords, configPasswords(b)...)
		}
		Expect(passwords).NotTo(BeEmpty())
		// The whole artifact tree, tarballs included, as bytes on disk and unpacked.
		err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			Expect(err).NotTo(HaveOccurred())
			if d.IsDir() {
				return nil
			}
			raw, err := os.ReadFile(p)
			Expect(err).NotTo(HaveOccurred())
			for _, pw := range passwords {
				Expect(strings.Contains(string(raw), pw)).To(BeFalse(), "a password in %s", p)
			}
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		for name, b := range files {
			for _, pw := range passwords {
				Expect(strings.Contains(string(b), pw)).To(BeFalse(), "a password in %s", name)
			}
		}
	}, SpecTimeout(5*time.Minute))

	It("reports a network and a server left behind, and nothing after cleanup", func(ctx SpecContext) {
		before, err := env.Snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		c, err := env.Clients(ctx, env.Config.Cloud)
		Expect(err).NotTo(HaveOccurred())

		name := "leak-" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
		net, err := networks.Create(ctx, c.Network, networks.CreateOpts{Name: name}).Extract()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { deleteIgnoringGone(networks.Delete(ctx, c.Network, net.ID).ExtractErr()) })

		flavor, image := smallestFlavor(ctx, c), anyImage(ctx, c)
		compute := *c.Compute
		compute.Microversion = "2.37" // networks "none"
		srv, err := servers.Create(ctx, &compute, servers.CreateOpts{Name: name, FlavorRef: flavor, ImageRef: image, Networks: "none"}, nil).Extract()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { deleteIgnoringGone(servers.Delete(ctx, c.Compute, srv.ID).ExtractErr()) })

		leaked, err := env.Leaks(ctx, before)
		var le *devstack.LeakError
		Expect(errors.As(err, &le)).To(BeTrue())
		Expect(le.Leaked).To(Equal(leaked))
		Expect(leaked).To(ContainElement(devstack.Resource{Kind: devstack.KindNetwork, ID: net.ID, Name: name, Project: net.ProjectID}))
		Expect(leaked).To(ContainElement(HaveField("ID", srv.ID)))
		Expect(err.Error()).To(ContainSubstring(`network "` + name + `"`))
		Expect(err.Error()).To(ContainSubstring(`server "` + name + `"`))

		Expect(servers.Delete(ctx, c.Compute, srv.ID).ExtractErr()).To(Succeed())
		Expect(networks.Delete(ctx, c.Network, net.ID).ExtractErr()).To(Succeed())
		Eventually(func(ctx context.Context) ([]devstack.Resource, error) {
			l, err := env.Leaks(ctx, before)
			if errors.As(err, &le) {
				return l, nil
			}
			return l, err
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(500 * time.Millisecond).Should(BeEmpty())
	}, SpecTimeout(5*time.Minute))

	It("works as an Existing host from the local environment's clouds.yaml and key", func(ctx SpecContext) {
		x := &devstack.Existing{CloudsYAML: env.CloudsYAML, CACert: env.CACert, Address: env.SSH.Address, User: env.SSH.User, PrivateKey: env.SSH.PrivateKey, HostKey: env.SSH.HostKey}
		e2, err := devstack.Up(ctx, env.Config, x, devstack.WithLogger(GinkgoLogr))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(e2.Close)
		Expect(e2.Host).To(Equal("existing"))
		pc, err := e2.ProviderClient(ctx, e2.Config.Cloud)
		Expect(err).NotTo(HaveOccurred())
		Expect(pc.Token()).NotTo(BeEmpty())
		Expect(e2.Wait(ctx, devstack.ForAvailabilityZone("testaz1").WithTimeout(time.Minute))).To(Succeed())
	})

	Context("Up's options", func() {
		// existing is the running environment as an Existing host, counted.
		existing := func() *countingHost {
			return &countingHost{Host: &devstack.Existing{CloudsYAML: env.CloudsYAML, CACert: env.CACert, Address: env.SSH.Address, User: env.SSH.User, PrivateKey: env.SSH.PrivateKey, HostKey: env.SSH.HostKey}}
		}
		ready := devstack.WithWait(devstack.ForKeystoneToken().WithTimeout(time.Minute))
		notReady := devstack.WithWait(devstack.ForAvailabilityZone("nosuchaz").WithTimeout(3 * time.Second))
		up := func(ctx context.Context, cfg devstack.Config, h devstack.Host, opts ...devstack.Option) (*devstack.Environment, error) {
			e, err := devstack.Up(ctx, cfg, h, append(opts, devstack.WithLogger(GinkgoLogr))...)
			if err == nil {
				DeferCleanup(e.Close)
			}
			return e, err
		}

		It("write the state file once and attach from it after; another configuration brings a new environment up", func(ctx SpecContext) {
			h := existing()
			state := filepath.Join(GinkgoT().TempDir(), "state", "environment.json")
			first, err := up(ctx, env.Config, h, ready, devstack.WithStateFile(state))
			Expect(err).NotTo(HaveOccurred())
			Expect(h.ups).To(Equal(1))
			fi, err := os.Stat(state)
			Expect(err).NotTo(HaveOccurred())
			Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o600)), "the state file holds the private key")

			again, err := up(ctx, env.Config, h, ready, devstack.WithStateFile(state))
			Expect(err).NotTo(HaveOccurred())
			Expect(h.ups).To(Equal(1), "attached from the state file, the host was not asked")
			Expect(again.SSH).To(Equal(first.SSH))
			Expect(again.CloudsYAML).To(Equal(first.CloudsYAML))
			// Without a host, too.
			_, err = up(ctx, env.Config, nil, ready, devstack.WithStateFile(state))
			Expect(err).NotTo(HaveOccurred())

			other := env.Config
			other.Name = "other"
			_, err = up(ctx, other, nil, ready, devstack.WithStateFile(state))
			Expect(err).To(MatchError(ContainSubstring("no host to bring the environment up on")))
			_, err = up(ctx, other, h, ready, devstack.WithStateFile(state))
			Expect(err).NotTo(HaveOccurred())
			Expect(h.ups).To(Equal(2))
			b, err := os.ReadFile(state)
			Expect(err).NotTo(HaveOccurred())
			written, err := devstack.UnmarshalEnvironment(b)
			Expect(err).NotTo(HaveOccurred())
			Expect(written.Config.Name).To(Equal("other"), "the state file now describes the new environment")
		})

		It("name a state file that cannot be read and say how to recover", func(ctx SpecContext) {
			state := filepath.Join(GinkgoT().TempDir(), "environment.json")
			Expect(os.WriteFile(state, []byte("{not json"), 0o600)).To(Succeed())
			h := existing()
			_, err := up(ctx, env.Config, h, ready, devstack.WithStateFile(state))
			Expect(err).To(MatchError(And(ContainSubstring("state file "+state+": "), ContainSubstring("delete it"))))
			Expect(h.ups).To(BeZero())
		})

		It("tear down an environment that came up but is not ready, with WithDownOnFailure only, never one attached to", func(ctx SpecContext) {
			h := existing()
			_, err := up(ctx, env.Config, h, notReady)
			Expect(err).To(MatchError(ContainSubstring("is not ready")))
			Expect(err).To(MatchError(ContainSubstring("nosuchaz")))
			Expect(h.ups).To(Equal(1))
			Expect(h.downs).To(BeZero(), "left for inspection by default")

			_, err = up(ctx, env.Config, h, notReady, devstack.WithDownOnFailure())
			Expect(err).To(MatchError(ContainSubstring("is not ready")))
			Expect(h.downs).To(Equal(1))

			state := filepath.Join(GinkgoT().TempDir(), "environment.json")
			_, err = up(ctx, env.Config, h, ready, devstack.WithStateFile(state))
			Expect(err).NotTo(HaveOccurred())
			_, err = up(ctx, env.Config, h, notReady, devstack.WithStateFile(state), devstack.WithDownOnFailure())
			Expect(err).To(MatchError(ContainSubstring("is not ready")))
			Expect(h.downs).To(Equal(1), "an environment attached to is not this process's to tear down")
		}, SpecTimeout(3*time.Minute))
	})

	Context("an API behind TLS", func() {
		// keystone behind a TLS-terminating proxy on loopback, with a
		// certificate from a CA made for the spec.
		var (
			authURL string
			caPEM   []byte
		)
		BeforeEach(func(ctx SpecContext) {
			var cert tls.Certificate
			caPEM, cert = newCertificate("127.0.0.1")
			proxy, keystone := keystoneProxy(ctx, env)
			srv := httptest.NewUnstartedServer(proxy)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			srv.Config.ErrorLog = log.New(GinkgoWriter, "TLS proxy: ", 0) // the refused handshake of the spec without the CA
			srv.StartTLS()
			DeferCleanup(srv.Close)
			authURL = srv.URL + keystone.Path
		})
		// behindTLS is env with its cloud's auth_url at the proxy and the
		// cloud entry's keys set (cacert, verify).
		behindTLS := func(entry map[string]any) *devstack.Environment {
			GinkgoHelper()
			var doc map[string]map[string]map[string]any
			Expect(yaml.Unmarshal(env.CloudsYAML, &doc)).To(Succeed())
			cloud := doc["clouds"][env.Config.Cloud]
			cloud["auth"].(map[string]any)["auth_url"] = authURL
			maps.Copy(cloud, entry)
			b, err := yaml.Marshal(doc)
			Expect(err).NotTo(HaveOccurred())
			return withCloudsYAML(env, string(b))
		}
		authenticates := func(ctx context.Context, e *devstack.Environment) {
			GinkgoHelper()
			pc, err := e.ProviderClient(ctx, e.Config.Cloud)
			Expect(err).NotTo(HaveOccurred())
			Expect(pc.Token()).NotTo(BeEmpty())
			Expect(pc.IdentityEndpoint).To(HavePrefix("https://127.0.0.1:"))
		}

		It("trusts the CA of Environment.CACert", func(ctx SpecContext) {
			e := behindTLS(nil)
			e.CACert = caPEM
			authenticates(ctx, e)
		})
		It("trusts the CA of the file clouds.yaml's cacert names", func(ctx SpecContext) {
			ca := filepath.Join(GinkgoT().TempDir(), "cacert.pem")
			Expect(os.WriteFile(ca, caPEM, 0o600)).To(Succeed())
			authenticates(ctx, behindTLS(map[string]any{"cacert": ca}))
		})
		It("skips verification only when clouds.yaml says verify: false", func(ctx SpecContext) {
			authenticates(ctx, behindTLS(map[string]any{"verify": false}))
			_, err := behindTLS(nil).ProviderClient(ctx, env.Config.Cloud)
			Expect(err).To(MatchError(ContainSubstring("certificate signed by unknown authority")))
		})
		It("names a cacert file that cannot be read, and a bundle with no certificate", func(ctx SpecContext) {
			missing := filepath.Join(GinkgoT().TempDir(), "missing.pem")
			_, err := behindTLS(map[string]any{"cacert": missing}).ProviderClient(ctx, env.Config.Cloud)
			Expect(err).To(MatchError(And(ContainSubstring(`clouds.yaml: cacert "`+missing+`"`), ContainSubstring("set Environment.CACert or fix the path"))))
			e := behindTLS(nil)
			e.CACert = []byte("not a certificate")
			_, err = e.ProviderClient(ctx, env.Config.Cloud)
			Expect(err).To(MatchError(ContainSubstring("CA bundle holds no PEM certificate")))
		})
	})

	Context("errors", func() {
		It("names the clouds that exist for a missing cloud", func(ctx SpecContext) {
			_, err := env.ProviderClient(ctx, "nosuchcloud")
			Expect(err).To(MatchError(`clouds.yaml: cloud "nosuchcloud" not found; known clouds: capo-e2e, capo-e2e-admin`))
		})
		It("says keystone refused the credentials on a 401", func(ctx SpecContext) {
			bad := withCloudsYAML(env, replacePassword(env.CloudsYAML, env.Config.Cloud, "wrong-password"))
			_, err := bad.ProviderClient(ctx, env.Config.Cloud)
			Expect(err).To(MatchError(devstack.ErrUnauthorized))
			Expect(err.Error()).To(ContainSubstring(`cloud "capo-e2e": keystone refused the credentials (HTTP 401) for user "demo"`))
			Expect(err.Error()).NotTo(ContainSubstring("wrong-password"))
		})
		It("gives line and field for a malformed clouds.yaml", func(ctx SpecContext) {
			bad := withCloudsYAML(env, strings.Replace(string(env.CloudsYAML), "auth:", "auth: [", 1))
			_, err := bad.ProviderClient(ctx, env.Config.Cloud)
			var ce *devstack.CloudsYAMLError
			Expect(errors.As(err, &ce)).To(BeTrue(), "%v", err)
			Expect(ce.Line).To(BeNumerically(">", 0))
		})
		It("says the controller is unreachable", func(ctx SpecContext) {
			// Nothing listens on port 1 of the controller's public address.
			host := strings.Split(env.SSH.Address, ":")[0]
			x := &devstack.Existing{CloudsYAML: env.CloudsYAML, Address: host + ":1", User: env.SSH.User, PrivateKey: env.SSH.PrivateKey, HostKey: env.SSH.HostKey}
			_, err := devstack.Up(ctx, env.Config, x)
			Expect(err).To(MatchError(devstack.ErrUnreachable))
			Expect(err.Error()).To(ContainSubstring(host + ":1"))
		})
	})
})

// countingHost counts the calls of Up and Down a real host gets.
type countingHost struct {
	devstack.Host
	ups, downs int
}

func (h *countingHost) Up(ctx context.Context, cfg devstack.Config) (*devstack.Environment, error) {
	h.ups++
	return h.Host.Up(ctx, cfg)
}

func (h *countingHost) Down(ctx context.Context) error {
	h.downs++
	return h.Host.Down(ctx)
}

// keystoneProxy is a reverse proxy to the keystone of env's cloud, through a
// tunnel of its own (closed after the spec), and keystone's auth_url.
func keystoneProxy(ctx context.Context, env *devstack.Environment) (*httputil.ReverseProxy, *url.URL) {
	GinkgoHelper()
	cy, err := devstack.ParseCloudsYAML(env.CloudsYAML)
	Expect(err).NotTo(HaveOccurred())
	cloud, err := cy.Cloud(env.Config.Cloud)
	Expect(err).NotTo(HaveOccurred())
	keystone, err := url.Parse(cloud.AuthInfo.AuthURL)
	Expect(err).NotTo(HaveOccurred())
	tun, err := env.Tunnel(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(tun.Close)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: keystone.Scheme, Host: keystone.Host})
	proxy.Transport = tun.Transport()
	return proxy, keystone
}

// withCloudsYAML returns a copy of env (without its connections) with another clouds.yaml.
func withCloudsYAML(env *devstack.Environment, clouds string) *devstack.Environment {
	GinkgoHelper()
	b, err := env.Marshal()
	Expect(err).NotTo(HaveOccurred())
	e, err := devstack.UnmarshalEnvironment(b)
	Expect(err).NotTo(HaveOccurred())
	e.CloudsYAML = []byte(clouds)
	DeferCleanup(e.Close)
	return e
}

func replacePassword(clouds []byte, cloud, pw string) string {
	GinkgoHelper()
	var doc map[string]map[string]map[string]any
	Expect(yaml.Unmarshal(clouds, &doc)).To(Succeed())
	doc["clouds"][cloud]["auth"].(map[string]any)["password"] = pw
	b, err := yaml.Marshal(doc)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

func cloudPasswords(clouds []byte) []string {
	GinkgoHelper()
	var doc map[string]map[string]map[string]any
	Expect(yaml.Unmarshal(clouds, &doc)).To(Succeed())
	var out []string
	for _, c := range doc["clouds"] {
		if a, ok := c["auth"].(map[string]any); ok {
			if p, ok := a["password"].(string); ok && p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// providerConf is the part of the OpenStack cloud provider's configuration the variables fill in.
type providerConf struct {
	Global struct {
		AuthURL    string `gcfg:"auth-url"`
		Username   string `gcfg:"username"`
		UserID     string `gcfg:"user-id"`
		Password   string `gcfg:"password"`
		TenantID   string `gcfg:"tenant-id"`
		TenantName string `gcfg:"tenant-name"`
		DomainName string `gcfg:"domain-name"`
		DomainID   string `gcfg:"domain-id"`
		CAFile     string `gcfg:"ca-file"`
		Region     string `gcfg:"region"`
	}
}

var (
	passwordLine = regexp.MustCompile(`(?mi)^\s*[a-z0-9_]*password\s*=\s*(\S+)\s*$`)
	urlPassword  = regexp.MustCompile(`://[^:/@\s]+:([^@\s]+)@`)
)

// configPasswords returns every password value and URL password of a configuration file.
func configPasswords(b []byte) []string {
	var out []string
	for _, m := range passwordLine.FindAllSubmatch(b, -1) {
		if len(m[1]) >= 4 {
			out = append(out, string(m[1]))
		}
	}
	for _, m := range urlPassword.FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func readTarball(p string) map[string][]byte {
	GinkgoHelper()
	f, err := os.Open(p)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	gz, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		Expect(err).NotTo(HaveOccurred())
		b, err := io.ReadAll(tr)
		Expect(err).NotTo(HaveOccurred())
		out[h.Name] = b
	}
}

func workerCompute(ctx context.Context, c *devstack.Clients, az string) computeservices.Service {
	GinkgoHelper()
	compute := *c.Compute
	compute.Microversion = "2.53" // services by UUID
	p, err := computeservices.List(&compute, computeservices.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
	Expect(err).NotTo(HaveOccurred())
	l, err := computeservices.ExtractServices(p)
	Expect(err).NotTo(HaveOccurred())
	for _, s := range l {
		if s.Zone == az {
			return s
		}
	}
	Fail("no nova-compute in " + az)
	return computeservices.Service{}
}

// workerUp checks, independently of the waits, that az has an up and
// enabled nova-compute and cinder-volume.
func workerUp(ctx context.Context, c *devstack.Clients, az string) error {
	s := workerCompute(ctx, c, az)
	if s.State != "up" || s.Status != "enabled" {
		return errors.New("nova-compute in " + az + " is " + s.State + "/" + s.Status)
	}
	p, err := blockservices.List(c.BlockStorage, blockservices.ListOpts{Binary: "cinder-volume"}).AllPages(ctx)
	if err != nil {
		return err
	}
	l, err := blockservices.ExtractServices(p)
	if err != nil {
		return err
	}
	for _, v := range l {
		if v.Zone == az && v.State == "up" && v.Status == "enabled" {
			return nil
		}
	}
	return errors.New("no cinder-volume up in " + az)
}

// forcedDown sets or clears a compute service's forced_down flag
// (UpdateOpts omits a false ForcedDown, so it cannot clear it).
type forcedDown bool

func (f forcedDown) ToServiceUpdateMap() (map[string]any, error) {
	return map[string]any{"forced_down": bool(f)}, nil
}

func smallestFlavor(ctx context.Context, c *devstack.Clients) string {
	GinkgoHelper()
	p, err := flavors.ListDetail(c.Compute, nil).AllPages(ctx)
	Expect(err).NotTo(HaveOccurred())
	l, err := flavors.ExtractFlavors(p)
	Expect(err).NotTo(HaveOccurred())
	Expect(l).NotTo(BeEmpty())
	best := l[0]
	for _, f := range l {
		if f.RAM < best.RAM {
			best = f
		}
	}
	return best.ID
}

func anyImage(ctx context.Context, c *devstack.Clients) string {
	GinkgoHelper()
	p, err := images.List(c.Image, images.ListOpts{Status: images.ImageStatusActive}).AllPages(ctx)
	Expect(err).NotTo(HaveOccurred())
	l, err := images.ExtractImages(p)
	Expect(err).NotTo(HaveOccurred())
	Expect(l).NotTo(BeEmpty(), "the environment has no active image")
	return l[0].ID
}

func deleteIgnoringGone(err error) {
	if err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		GinkgoWriter.Printf("cleanup: %v\n", err)
	}
}

var _ = AfterSuite(func() {
	if shared != nil {
		Expect(shared.Close()).To(Succeed())
	}
})

// newCertificate makes a CA and a certificate it signed for the IP address
// host; it returns the CA's certificate (PEM) and the server's.
func newCertificate(host string) (caPEM []byte, server tls.Certificate) {
	GinkgoHelper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stackgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}
