//go:build linux

package devstack_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/internal/testbed"
)

// Remote hosts (OpenStack, GCE, existing) have no StateDir: CollectLogs reads
// their nodes over SSH, the controller at its public address and the worker
// through the tunnel. These specs run it against the SSH test bed: OpenSSH's
// sshd on a controller namespace and on a host behind it at 10.0.3.10, which
// plays the worker. The bed has no systemd, so the nodes' units and journals
// are files the spec writes, listed and printed by stand-in commands; the
// configuration is read by the real command, below a root the spec fills
// with DevStack's files, key material among them.
var _ = Describe("collecting logs from remote nodes", Ordered, func() {
	var (
		bed     *testbed.Bed
		root    string
		secrets map[string]string // what must never reach an artifact, by what it is
	)
	BeforeAll(func(ctx SpecContext) {
		if os.Geteuid() != 0 {
			Skip("the SSH test bed builds network namespaces and runs sshd, which needs root; CI runs it as root")
		}
		var err error
		bed, err = testbed.Start(ctx, testbed.Options{Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(bed.Close(ctx)).To(Succeed())
		}, NodeTimeout(time.Minute))

		secrets = map[string]string{}
		for _, what := range []string{"cloud password", "database password", "service password", "admin password", "fernet key", "credential key", "TLS key"} {
			secrets[what] = randomSecret()
		}
		root = GinkgoT().TempDir()
		files := map[string]string{
			"etc/keystone/keystone.conf":       "[database]\nconnection = mysql+pymysql://keystone:" + secrets["database password"] + "@10.0.3.1/keystone\n",
			"etc/keystone/fernet-keys/0":       secrets["fernet key"] + "\n",
			"etc/keystone/credential-keys/0":   secrets["credential key"] + "\n",
			"etc/nova/nova.conf":               "[keystone_authtoken]\nusername = nova\npassword = " + secrets["service password"] + "\n",
			"etc/neutron/ssl/neutron.pem":      "-----BEGIN PRIVATE KEY-----\n" + secrets["TLS key"] + "\n-----END PRIVATE KEY-----\n",
			"opt/stack/devstack/local.conf":    "[[local|localrc]]\nADMIN_PASSWORD=" + secrets["admin password"] + "\n",
			"journal/devstack@n-api.service":   "n-api: authenticating as nova with " + secrets["service password"] + "\n",
			"journal/devstack@c-vol.service":   "c-vol: started\n",
			"elsewhere/not-collected.conf":     "not part of the configuration\n",
			"etc/keystone/policy.d/extra.yaml": "\"identity:get_user\": \"\"\n",
		}
		for name, content := range files {
			p := filepath.Join(root, name)
			Expect(os.MkdirAll(filepath.Dir(p), 0o700)).To(Succeed())
			Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
		}
		// Stand-ins for systemctl and journalctl; the log also says which
		// sshd served it (SSH_CONNECTION: client address and port, server
		// address and port).
		journals := filepath.Join(root, "journal")
		DeferCleanup(devstack.SetRemoteNodeForTest(root, "ls "+journals, "cat "+journals+"/%s; echo served by $SSH_CONNECTION"))
	}, NodeTimeout(2*time.Minute))

	// remoteEnv is an environment of a remote host: the bed's controller,
	// and the host behind it as worker, whose host key is workerKey.
	remoteEnv := func(workerKey string) *devstack.Environment {
		env := &devstack.Environment{
			Config:     devstack.DefaultConfig(),
			Host:       "existing",
			Controller: devstack.Node{Name: "controller", PrivateIP: netip.MustParseAddr("10.0.3.1")},
			Worker:     devstack.Node{Name: "worker", PrivateIP: netip.MustParseAddr(testbed.PrivateHost), HostKey: workerKey},
			SSH: devstack.SSHEndpoint{
				Address:    bed.ControllerSSHD.Addr,
				User:       testbed.User,
				PrivateKey: bed.UserKey,
				HostKey:    strings.TrimSpace(string(bed.ControllerSSHD.HostKeyLine)),
			},
			// Nothing listens on the worker's port 5000: the resource
			// dumps fail, promptly, inside the bed.
			CloudsYAML: []byte(sprintf(`clouds:
  %[1]s:
    auth:
      auth_url: http://%[3]s:5000/v3
      username: demo
      password: %[4]s
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
  %[2]s:
    auth:
      auth_url: http://%[3]s:5000/v3
      username: admin
      password: %[4]s
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`, devstack.DefaultCloud, devstack.DefaultCloudAdmin, testbed.PrivateHost, secrets["cloud password"])),
		}
		DeferCleanup(env.Close)
		return env
	}

	// collect runs CollectLogs and returns every file of the tarballs, by
	// name, and its error; it checks that no secret is in any of them, packed
	// or unpacked, nor in the error.
	collect := func(ctx SpecContext, env *devstack.Environment) (map[string][]byte, error) {
		GinkgoHelper()
		dir := GinkgoT().TempDir()
		tarballs, err := env.CollectLogs(ctx, dir)
		Expect(tarballs).To(ConsistOf(filepath.Join(dir, "controller.tar.gz"), filepath.Join(dir, "worker.tar.gz")))
		files := map[string][]byte{}
		for _, t := range tarballs {
			raw, rerr := os.ReadFile(t)
			Expect(rerr).NotTo(HaveOccurred())
			for what, s := range secrets {
				Expect(strings.Contains(string(raw), s)).To(BeFalse(), "the %s in %s", what, t)
			}
			for name, b := range readTarball(t) {
				files[name] = b
			}
		}
		for name, b := range files {
			Expect(name).NotTo(Or(ContainSubstring("fernet"), ContainSubstring("credential"), HaveSuffix(".pem")), "key material")
			for what, s := range secrets {
				Expect(strings.Contains(string(b), s)).To(BeFalse(), "the %s in %s", what, name)
			}
		}
		if err != nil {
			for what, s := range secrets {
				Expect(err.Error()).NotTo(ContainSubstring(s), "the %s in the error", what)
			}
		}
		return files, err
	}

	It("reads both nodes over SSH, the worker through the tunnel, and leaves key material on the nodes", func(ctx SpecContext) {
		env := remoteEnv(strings.TrimSpace(string(bed.PrivateSSHD.HostKeyLine)))
		files, err := collect(ctx, env)
		// The only failure: the resource dumps, with no cloud behind the bed.
		Expect(err).To(MatchError(ContainSubstring("resource dumps")))
		Expect(err.Error()).NotTo(Or(ContainSubstring("controller:"), ContainSubstring("worker:")))
		Expect(string(files["controller/errors.txt"])).To(ContainSubstring("resource dumps"))

		for node, served := range map[string]string{"controller": bed.ControllerIP + " 22", "worker": testbed.PrivateHost + " 22"} {
			Expect(files).To(HaveKey(node+"/logs/c-vol.log"), "the units of %s", node)
			Expect(string(files[node+"/logs/n-api.log"])).To(And(
				ContainSubstring("n-api: authenticating as nova with "+devstack.Redacted),
				ContainSubstring("served by "),
				ContainSubstring(" "+served+"\n"),
			), "%s's journal, from its own sshd", node)
			Expect(string(files[node+"/etc/keystone/keystone.conf"])).To(ContainSubstring("mysql+pymysql://keystone:" + devstack.Redacted + "@10.0.3.1/keystone"))
			Expect(string(files[node+"/etc/nova/nova.conf"])).To(ContainSubstring("password = " + devstack.Redacted))
			Expect(string(files[node+"/etc/opt/stack/devstack/local.conf"])).To(ContainSubstring("ADMIN_PASSWORD=" + devstack.Redacted))
			Expect(files).To(HaveKey(node + "/etc/keystone/policy.d/extra.yaml"))
		}
		for name := range files {
			Expect(name).NotTo(ContainSubstring("not-collected"))
		}
	}, SpecTimeout(2*time.Minute))

	DescribeTable("collects the controller and says why a worker's logs are missing",
		func(ctx SpecContext, workerKey func() string, why string) {
			env := remoteEnv(workerKey())
			files, err := collect(ctx, env)
			Expect(err).To(MatchError(And(ContainSubstring("worker: "), ContainSubstring(why))))
			Expect(string(files["worker/errors.txt"])).To(ContainSubstring(why))
			Expect(files).NotTo(HaveKey("worker/logs/n-api.log"))
			Expect(string(files["controller/logs/n-api.log"])).To(ContainSubstring(" " + bed.ControllerIP + " 22\n"))
			Expect(files).To(HaveKey("controller/etc/nova/nova.conf"))
		},
		Entry("a wrong host key", SpecTimeout(2*time.Minute), func() string { return strings.TrimSpace(string(bed.FloatingSSHD.HostKeyLine)) }, "host key mismatch"),
		Entry("no host key", SpecTimeout(2*time.Minute), func() string { return "" }, "its SSH host key is unknown"),
	)
})

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
