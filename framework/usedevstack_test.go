package framework_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

// silentSSHD accepts TCP connections on loopback and never answers, as a
// controller whose sshd hangs: a dial to it ends only when its context does.
func silentSSHD() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	DeferCleanup(func() {
		Expect(l.Close()).To(Succeed())
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// testController is a controller's sshd on loopback: x/crypto/ssh's server
// with a host key and the user's key, taking connections and their keepalive
// requests; it opens no channels.
type testController struct {
	addr    string
	hostKey ssh.Signer
	userKey []byte // PEM
}

func startTestController() *testController {
	GinkgoHelper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	Expect(err).NotTo(HaveOccurred())
	userPub, userPriv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(userPriv, "")
	Expect(err).NotTo(HaveOccurred())
	authorized, err := ssh.NewPublicKey(userPub)
	Expect(err).NotTo(HaveOccurred())
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) != string(authorized.Marshal()) {
			return nil, errors.New("unknown key")
		}
		return &ssh.Permissions{}, nil
	}}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					_ = ch.Reject(ssh.Prohibited, "no channels here")
				}
			}()
		}
	}()
	DeferCleanup(func() {
		Expect(l.Close()).To(Succeed())
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &testController{addr: l.Addr().String(), hostKey: hostKey, userKey: pem.EncodeToMemory(block)}
}

// setupDataFor is what SetupDevStackData would return for an environment
// whose controller's sshd is at addr.
func setupDataFor(addr string, hostKey ssh.PublicKey, userKey []byte) *framework.SetupData {
	GinkgoHelper()
	env := &devstack.Environment{
		Config: devstack.DefaultConfig(), Host: "existing",
		SSH:        devstack.SSHEndpoint{Address: addr, User: "stack", PrivateKey: userKey, HostKey: string(ssh.MarshalAuthorizedKey(hostKey))},
		CloudsYAML: []byte("clouds:\n  capo-e2e:\n    auth: {auth_url: http://10.0.3.15/identity, username: demo, password: secret}\n"),
	}
	raw, err := env.Marshal()
	Expect(err).NotTo(HaveOccurred())
	return &framework.SetupData{
		Environment: raw, Variables: devstack.Variables{devstack.VarFailureDomain: "testaz1"},
		SetupStarted: time.Now().Add(-time.Minute).UTC().Truncate(time.Second), SetupDone: time.Now().UTC().Truncate(time.Second),
	}
}

// keepEnv restores the process environment's names after the spec.
func keepEnv(names ...string) {
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			DeferCleanup(os.Setenv, name, v)
		} else {
			DeferCleanup(os.Unsetenv, name)
		}
	}
}

var _ = Describe("UseDevStack", func() {
	It("gives up its dial when its context ends, as on an interrupt", func(ctx SpecContext) {
		c := startTestController()
		data, err := json.Marshal(setupDataFor(silentSSHD(), c.hostKey.PublicKey(), c.userKey))
		Expect(err).NotTo(HaveOccurred())
		interrupted, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		err = InterceptGomegaFailure(func() { framework.UseDevStack(interrupted, data) })
		Expect(err).To(MatchError(ContainSubstring("Couldn't open a tunnel")))
		Expect(err).To(MatchError(ContainSubstring("context canceled")))
		Expect(time.Since(start)).To(BeNumerically("<", framework.DefaultUseTimeout/2),
			"UseDevStack returned when its context ended, not at its own bound")
	})

	It("writes the clouds.yaml to a 0600 file named by OPENSTACK_CLOUD_YAML_FILE, which Close removes", func(ctx SpecContext) {
		keepEnv(framework.VarCloudYAMLFile, devstack.VarFailureDomain)
		c := startTestController()
		sd := setupDataFor(c.addr, c.hostKey.PublicKey(), c.userKey)
		data, err := json.Marshal(sd)
		Expect(err).NotTo(HaveOccurred())
		ds := framework.UseDevStack(ctx, data)
		DeferCleanup(ds.Close)
		Expect(ds.CloudsYAMLFile).NotTo(BeEmpty())
		Expect(os.Getenv(framework.VarCloudYAMLFile)).To(Equal(ds.CloudsYAMLFile))
		Expect(ds.Variables).To(HaveKeyWithValue(framework.VarCloudYAMLFile, ds.CloudsYAMLFile))
		Expect(os.Getenv(devstack.VarFailureDomain)).To(Equal("testaz1"))
		fi, err := os.Stat(ds.CloudsYAMLFile)
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		b, err := os.ReadFile(ds.CloudsYAMLFile)
		Expect(err).NotTo(HaveOccurred())
		Expect(b).To(Equal(ds.Environment.CloudsYAML))
		Expect(ds.SetupDone).To(BeTemporally("==", sd.SetupDone))

		file := ds.CloudsYAMLFile
		Expect(ds.Close()).To(Succeed())
		Expect(file).NotTo(BeAnExistingFile(), "Close removes the process's clouds.yaml")
		Expect(filepath.Dir(file)).NotTo(BeADirectory())
	})

	It("attaches from set-up data a suite carried in its own before-suite data, as CAPO's suite serialises it", func(ctx SpecContext) {
		keepEnv(framework.VarCloudYAMLFile, devstack.VarFailureDomain)
		c := startTestController()
		// CAPO's synchronizedBeforeTestSuiteConfig goes through
		// sigs.k8s.io/yaml's Marshal and UnmarshalStrict.
		type suiteConfig struct {
			ArtifactFolder string               `json:"artifactFolder,omitempty"`
			DevStack       *framework.SetupData `json:"devStack,omitempty"`
		}
		out, err := yaml.Marshal(suiteConfig{ArtifactFolder: "_artifacts", DevStack: setupDataFor(c.addr, c.hostKey.PublicKey(), c.userKey)})
		Expect(err).NotTo(HaveOccurred())
		var in suiteConfig
		Expect(yaml.UnmarshalStrict(out, &in)).To(Succeed())
		Expect(in.ArtifactFolder).To(Equal("_artifacts"))
		ds := framework.UseSetupData(ctx, in.DevStack)
		DeferCleanup(ds.Close)
		Expect(ds.Environment.SSH.Address).To(Equal(c.addr))
		Expect(ds.Variables).To(HaveKeyWithValue(devstack.VarFailureDomain, "testaz1"))
		Expect(ds.CloudsYAMLFile).To(BeAnExistingFile())
	})
})

var _ = Describe("SetupDevStack's bounds", func() {
	It("fall back to DefaultDevStackIntervals for CAPO's e2e configuration, which has no wait-devstack", func(ctx SpecContext) {
		// Decoded, not loaded: resolving its release markers needs GitHub.
		b, err := os.ReadFile(filepath.Join(capoDir(ctx), "test", "e2e", "data", "e2e_conf.yaml"))
		Expect(err).NotTo(HaveOccurred())
		conf := &clusterctl.E2EConfig{}
		Expect(yaml.Unmarshal(b, conf)).To(Succeed(), "CAPO %s's e2e configuration should decode", capoVersion)
		Expect(conf.Intervals).To(HaveKey("default/wait-controllers"), "the intervals were read")
		Expect(conf.Intervals).NotTo(HaveKey("default/wait-devstack"))
		Expect(framework.DevStackIntervals(conf)).To(Equal(framework.DefaultDevStackIntervals))
		Expect(framework.DevStackIntervals(nil)).To(Equal(framework.DefaultDevStackIntervals))
		iv, err := framework.ParseIntervals(framework.DefaultDevStackIntervals...)
		Expect(err).NotTo(HaveOccurred())
		Expect(iv.Timeout).To(Equal(30 * time.Minute))
		Expect(iv.Polling).To(Equal(10 * time.Second))
	})

	It("are the e2e configuration's when it has them", func(ctx SpecContext) {
		conf, err := framework.LoadE2EConfig(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		conf.Intervals["default/wait-devstack"] = []string{"7m", "3s"}
		Expect(framework.DevStackIntervals(conf)).To(Equal([]interface{}{"7m", "3s"}))
	})
})

var _ = Describe("E2EFlags", func() {
	It("registers nothing on the process flag set by itself", func() {
		for _, name := range framework.E2EFlagNames {
			Expect(flag.CommandLine.Lookup(name)).To(BeNil(), "-%s", name)
		}
	})

	It("binds to a flag set of the suite's choice", func() {
		fs := flag.NewFlagSet("suite", flag.ContinueOnError)
		var f framework.E2EFlags
		Expect(f.Bind(fs)).To(Succeed())
		Expect(fs.Parse([]string{"-e2e.config=conf.yaml", "-e2e.artifacts-folder=out", "-e2e.skip-resource-cleanup"})).To(Succeed())
		Expect(f).To(Equal(framework.E2EFlags{ConfigPath: "conf.yaml", ArtifactFolder: "out", SkipCleanup: true}))
	})

	It("refuses a flag set that defines one of its names already, instead of panicking", func() {
		fs := flag.NewFlagSet("capo", flag.ContinueOnError)
		fs.String("e2e.artifacts-folder", "", "the suite's own")
		var f framework.E2EFlags
		Expect(f.Bind(fs)).To(MatchError(ContainSubstring("flag -e2e.artifacts-folder is defined already on capo")))
		Expect(fs.Lookup("e2e.config")).To(BeNil(), "nothing is registered")
	})
})
