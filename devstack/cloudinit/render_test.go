package cloudinit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/cloudinit"
)

// userData is the part of a rendered document the specs inspect.
type userData struct {
	Users []struct {
		Name              string   `json:"name"`
		Sudo              string   `json:"sudo"`
		LockPasswd        bool     `json:"lock_passwd"`
		SSHAuthorizedKeys []string `json:"ssh_authorized_keys"`
	} `json:"users"`
	SSHKeys        map[string]string `json:"ssh_keys"`
	SSHGenKeyTypes []string          `json:"ssh_genkeytypes"`
	Packages       []string          `json:"packages"`
	WriteFiles     []struct {
		Path        string `json:"path"`
		Permissions string `json:"permissions"`
		Content     string `json:"content"`
	} `json:"write_files"`
	RunCmd [][]string `json:"runcmd"`
}

func parseUserData(doc []byte) userData {
	GinkgoHelper()
	var u userData
	Expect(yaml.Unmarshal(doc, &u)).To(Succeed())
	return u
}

func (u userData) file(path string) string {
	GinkgoHelper()
	for _, f := range u.WriteFiles {
		if f.Path == path {
			return f.Content
		}
	}
	Fail("no write_files entry " + path)
	return ""
}

func render(in cloudinit.Input) []byte {
	GinkgoHelper()
	doc, err := cloudinit.Render(in)
	Expect(err).NotTo(HaveOccurred())
	return doc
}

var _ = Describe("Render", func() {
	roles := []cloudinit.Role{cloudinit.Controller, cloudinit.Worker}

	It("renders the controller's and the worker's user-data as in the golden files, and cloud-init accepts them", func() {
		for _, role := range roles {
			doc := render(fixtureInput(role))
			expectGolden(string(role)+".yaml", doc)
			expectValidCloudConfig(doc)

			redacted, err := cloudinit.RenderRedacted(fixtureInput(role))
			Expect(err).NotTo(HaveOccurred())
			expectGolden(string(role)+".redacted.yaml", redacted)
			expectValidCloudConfig(redacted)
		}
	})

	It("passes cloud-init's schema check with every option changed", func() {
		cfg := devstack.Config{
			Name: "other", PrivateNetworkCIDR: netip.MustParsePrefix("192.168.50.0/24"),
			ControllerIP: netip.MustParseAddr("192.168.50.10"), WorkerIP: netip.MustParseAddr("192.168.50.11"),
			FloatingRange: netip.MustParsePrefix("172.30.0.0/22"), FailureDomain: "zone a", FailureDomainAlt: "zone'b",
			VolumeTypeAlt: "type with space",
		}
		for _, role := range roles {
			in := fixtureInput(role)
			in.Config = cfg
			in.User = "ubuntu"
			in.Flavors = []cloudinit.Flavor{{Name: "x.large", ID: "42", RAMMB: 8192, VCPUs: 4, DiskGB: 40}}
			in.Quotas = []cloudinit.Quota{{Project: "demo", Cores: 64}}
			in.RegistrationTimeout = 5 * time.Minute
			doc := render(in)
			expectValidCloudConfig(doc)
			u := parseUserData(doc)
			Expect(u.Users[0].Name).To(Equal("ubuntu"))
			for _, f := range u.WriteFiles {
				if strings.HasSuffix(f.Path, ".sh") {
					expectBashSyntax(f.Content)
				}
			}
			if role == cloudinit.Worker {
				Expect(u.file("/var/lib/stackgate/register-worker.sh")).To(ContainSubstring("az='zone'\\''b'\n"))
				Expect(u.file("/var/lib/stackgate/register-worker.sh")).To(ContainSubstring("wait_for 300 "))
			} else {
				post := u.file("/var/lib/stackgate/post-stack.sh")
				Expect(post).To(ContainSubstring("ensure_aggregate 'zone a'\n"))
				Expect(post).To(ContainSubstring("--id '42' --ram 8192 --vcpus 4 --disk 40 --ephemeral 0"))
				Expect(post).To(ContainSubstring("openstack quota set --cores 64 'demo'\n"))
				Expect(post).To(ContainSubstring("openstack volume type create --public --description \"stackgate e2e volume type\" 'type with space'"))
				Expect(u.file("/var/lib/stackgate/bootstrap.sh")).To(ContainSubstring("-s '172.30.0.0/22' -j MASQUERADE"))
			}
		}
	})

	Describe("the schema check", func() {
		It("is real: cloud-init rejects documents that are broken", func() {
			good := render(fixtureInput(cloudinit.Controller))
			broken := map[string][]byte{
				"packages as a string":       bytes.Replace(good, []byte("packages:\n"), []byte("packages: git\nx_packages:\n"), 1),
				"an unknown ssh_keys entry":  bytes.Replace(good, []byte("  ed25519_public:"), []byte("  ed25519_pub:"), 1),
				"a write_files without path": bytes.Replace(good, []byte("  - path: /var/lib/stackgate/lib.sh\n"), []byte("  - pathname: /var/lib/stackgate/lib.sh\n"), 1),
				"no #cloud-config header":    bytes.TrimPrefix(good, []byte("#cloud-config\n")),
				"invalid YAML":               append(bytes.Clone(good), []byte("runcmd: [unclosed\n")...),
			}
			for name, doc := range broken {
				Expect(doc).NotTo(Equal(good), "the %q mutation did not apply", name)
				out, ok := schemaCheck(doc)
				Expect(ok).To(BeFalse(), "cloud-init schema accepted a document with %s:\n%s", name, out)
				Expect(out).To(ContainSubstring("Cloud config schema errors"), name)
			}
		})
	})

	It("gives the node our host key, and only it", func() {
		in := fixtureInput(cloudinit.Controller)
		u := parseUserData(render(in))
		Expect(u.SSHKeys).To(HaveLen(2))
		signer, err := ssh.ParsePrivateKey([]byte(u.SSHKeys["ed25519_private"]))
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))).To(Equal(in.HostKey.AuthorizedKey()))
		Expect(u.SSHKeys["ed25519_public"]).To(Equal(in.HostKey.AuthorizedKey()))
		Expect(u.SSHGenKeyTypes).To(Equal([]string{"ed25519"}))
	})

	It("sets up the login user, packages, sysctls, local.conf and the bootstrap", func() {
		for _, role := range roles {
			in := fixtureInput(role)
			u := parseUserData(render(in))
			Expect(u.Users).To(HaveLen(1))
			Expect(u.Users[0].Name).To(Equal("cloud"))
			Expect(u.Users[0].LockPasswd).To(BeTrue())
			Expect(u.Users[0].Sudo).To(Equal("ALL=(ALL) NOPASSWD:ALL"))
			Expect(u.Users[0].SSHAuthorizedKeys).To(Equal([]string{in.AuthorizedKey}))
			Expect(u.Packages).To(Equal(cloudinit.Packages))
			Expect(u.file("/etc/sysctl.d/60-stackgate-devstack.conf")).To(ContainSubstring("net.ipv4.ip_forward = 1\n"))
			Expect(u.RunCmd).To(Equal([][]string{{"sysctl", "-p", "/etc/sysctl.d/60-stackgate-devstack.conf"}, {"/var/lib/stackgate/bootstrap.sh"}}))

			var lc *cloudinit.LocalConf
			var err error
			if role == cloudinit.Controller {
				lc, err = cloudinit.NewControllerLocalConf(in.Config, in.Passwords)
			} else {
				lc, err = cloudinit.NewWorkerLocalConf(in.Config, in.Passwords)
			}
			Expect(err).NotTo(HaveOccurred())
			want, err := lc.Render()
			Expect(err).NotTo(HaveOccurred())
			Expect(u.file("/var/lib/stackgate/local.conf")).To(Equal(string(want)))
			for _, f := range u.WriteFiles {
				if f.Path == "/var/lib/stackgate/local.conf" {
					Expect(f.Permissions).To(Equal("0600"))
				}
			}
			boot := u.file("/var/lib/stackgate/bootstrap.sh")
			Expect(boot).To(ContainSubstring("git clone --depth 1 --branch 'stable/2025.2' 'https://opendev.org/openstack/devstack'"))
			Expect(boot).To(ContainSubstring("su - stack -c 'TERM=vt100 /opt/stack/devstack/stack.sh'"))
			for _, f := range u.WriteFiles {
				if strings.HasSuffix(f.Path, ".sh") {
					expectBashSyntax(f.Content)
				}
			}
		}
	})

	It("uses a LocalConf given in the input", func() {
		in := fixtureInput(cloudinit.Worker)
		lc, err := cloudinit.NewWorkerLocalConf(in.Config, fixturePasswords)
		Expect(err).NotTo(HaveOccurred())
		lc.Branch = "master"
		lc.LibvirtType = "qemu"
		in.LocalConf = lc
		doc := render(in)
		expectValidCloudConfig(doc)
		u := parseUserData(doc)
		Expect(u.file("/var/lib/stackgate/local.conf")).To(ContainSubstring("LIBVIRT_TYPE=qemu\n"))
		Expect(u.file("/var/lib/stackgate/bootstrap.sh")).To(ContainSubstring("--branch 'master'"))
		Expect(u.file("/var/lib/stackgate/bootstrap.sh")).NotTo(ContainSubstring("/dev/kvm"))
	})

	It("keeps secrets out of the redacted document and out of fmt", func() {
		for _, role := range roles {
			in := fixtureInput(role)
			doc := render(in)
			redacted, err := cloudinit.RenderRedacted(in)
			Expect(err).NotTo(HaveOccurred())
			for _, line := range hostKeyBody(in.HostKey) {
				Expect(string(doc)).To(ContainSubstring(line), "the checks below must be able to fail")
			}
			shown := map[string]string{
				"the redacted document": string(redacted),
				"%v of the input":       fmt.Sprintf("%v", in),
				"%+v of the input":      fmt.Sprintf("%+v", in),
				"%#v of the input":      fmt.Sprintf("%#v", in),
				"the host key's String": in.HostKey.String(),
			}
			for where, s := range shown {
				expectNoHostKey(s, in.HostKey, where)
				for _, p := range revealed(fixturePasswords) {
					Expect(string(doc)).To(ContainSubstring(p))
					Expect(s).NotTo(ContainSubstring(p), "%s holds a password", where)
				}
			}
			Expect(string(redacted)).To(ContainSubstring("ed25519_private: |\n    <redacted>\n"))
			Expect(string(redacted)).To(ContainSubstring(in.HostKey.AuthorizedKey()))
		}
	})

	Describe("bad input", func() {
		secretKey := func() string {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			block, err := ssh.MarshalPrivateKey(priv, "")
			Expect(err).NotTo(HaveOccurred())
			return string(pem.EncodeToMemory(block))
		}
		DescribeTable("is refused with the field and the fix",
			func(change func(*cloudinit.Input), want ...string) {
				in := fixtureInput(cloudinit.Controller)
				change(&in)
				for _, f := range []func(cloudinit.Input) ([]byte, error){cloudinit.Render, cloudinit.RenderRedacted} {
					doc, err := f(in)
					Expect(err).To(HaveOccurred())
					Expect(doc).To(BeNil())
					for _, w := range want {
						Expect(err.Error()).To(ContainSubstring(w))
					}
					Expect(err.Error()).NotTo(ContainSubstring("PRIVATE KEY-----"))
					if !in.HostKey.IsZero() {
						expectNoHostKey(err.Error(), in.HostKey, "the error")
					}
					for _, p := range revealed(in.Passwords) {
						if p != "" {
							Expect(err.Error()).NotTo(ContainSubstring(p))
						}
					}
				}
			},
			Entry("no role", func(in *cloudinit.Input) { in.Role = "" }, "Input.Role", "cloudinit.Controller or cloudinit.Worker"),
			Entry("no user", func(in *cloudinit.Input) { in.User = "" }, "Input.User is empty", `"cloud"`),
			Entry("root as user", func(in *cloudinit.Input) { in.User = "root" }, "Input.User \"root\" is reserved"),
			Entry("stack as user", func(in *cloudinit.Input) { in.User = "stack" }, "Input.User \"stack\" is reserved"),
			Entry("a user name with a space", func(in *cloudinit.Input) { in.User = "a b" }, "Input.User", "not a Linux user name"),
			Entry("no authorized key", func(in *cloudinit.Input) { in.AuthorizedKey = " " }, "Input.AuthorizedKey is empty", "id_ed25519.pub"),
			Entry("a private key as authorized key", func(in *cloudinit.Input) { in.AuthorizedKey = secretKey() }, "Input.AuthorizedKey holds a private key"),
			Entry("garbage as authorized key", func(in *cloudinit.Input) { in.AuthorizedKey = "ssh-ed25519 notbase64" }, "Input.AuthorizedKey is not a public key"),
			Entry("two authorized keys", func(in *cloudinit.Input) { in.AuthorizedKey += "\n" + in.AuthorizedKey }, "Input.AuthorizedKey holds more than one key"),
			Entry("no host key", func(in *cloudinit.Input) { in.HostKey = cloudinit.HostKey{} }, "Input.HostKey is empty", "cloudinit.NewHostKey"),
			Entry("an invalid config", func(in *cloudinit.Input) { in.Config.WorkerIP = in.Config.ControllerIP },
				"Input.Config", "CONTROLLER_IP and WORKER_IP are both"),
			Entry("no passwords", func(in *cloudinit.Input) { in.Passwords = cloudinit.Passwords{} }, "Passwords.Admin is empty", "cloudinit.NewPasswords"),
			Entry("a password DevStack cannot take", func(in *cloudinit.Input) { in.Passwords.Database = "abc$(reboot)defgh" }, "Passwords.Database must be"),
			Entry("a local.conf of another node", func(in *cloudinit.Input) {
				lc, err := cloudinit.NewWorkerLocalConf(in.Config, in.Passwords)
				Expect(err).NotTo(HaveOccurred())
				in.LocalConf = lc
			}, "Input.LocalConf.HostIP 10.0.3.16 is not the controller's address 10.0.3.15"),
			Entry("an invalid local.conf", func(in *cloudinit.Input) {
				lc, err := cloudinit.NewControllerLocalConf(in.Config, in.Passwords)
				Expect(err).NotTo(HaveOccurred())
				lc.MTU = 0
				in.LocalConf = lc
			}, "Input.LocalConf", "LocalConf.MTU 0"),
			Entry("a negative timeout", func(in *cloudinit.Input) { in.RegistrationTimeout = -time.Second }, "Input.RegistrationTimeout", "20m"),
			Entry("a flavor without RAM", func(in *cloudinit.Input) { in.Flavors = []cloudinit.Flavor{{Name: "x", ID: "1", VCPUs: 1}} }, "Input.Flavors", `"x"`, "RAMMB"),
			Entry("a quota without project", func(in *cloudinit.Input) { in.Quotas = []cloudinit.Quota{{Cores: 1}} }, "Input.Quotas", "Project"),
		)
	})
})

var _ = Describe("HostKey", func() {
	It("is generated fresh, parses back and prints only its fingerprint", func() {
		a, err := cloudinit.NewHostKey()
		Expect(err).NotTo(HaveOccurred())
		b, err := cloudinit.NewHostKey()
		Expect(err).NotTo(HaveOccurred())
		Expect(a.AuthorizedKey()).NotTo(Equal(b.AuthorizedKey()))
		Expect(a.AuthorizedKey()).To(HavePrefix("ssh-ed25519 AAAA"))
		Expect(a.AuthorizedKey()).NotTo(HaveSuffix("\n"))

		back, err := cloudinit.ParseHostKey(a.PrivateKeyPEM())
		Expect(err).NotTo(HaveOccurred())
		Expect(back.AuthorizedKey()).To(Equal(a.AuthorizedKey()))
		pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(a.AuthorizedKey()))
		Expect(err).NotTo(HaveOccurred())
		Expect(pinned.Marshal()).To(Equal(a.PublicKey().Marshal()))

		for _, s := range []string{a.String(), fmt.Sprintf("%v", a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%s", a)} {
			Expect(s).To(Equal("ed25519 host key " + ssh.FingerprintSHA256(a.PublicKey())))
			expectNoHostKey(s, a, "the printed host key")
		}
		text, err := a.MarshalText()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(text)).To(Equal(a.AuthorizedKey()))
	})

	It("refuses keys it cannot put into ssh_keys as ed25519, without echoing them", func() {
		dir := GinkgoT().TempDir()
		rsa := filepath.Join(dir, "rsa")
		out, code := runWithin(time.Minute, "ssh-keygen to generate an RSA key", "", nil, "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa)
		Expect(code).To(BeZero(), "ssh-keygen failed:\n%s", out)
		rsaPEM, err := os.ReadFile(rsa)
		Expect(err).NotTo(HaveOccurred())
		_, err = cloudinit.ParseHostKey(rsaPEM)
		Expect(err).To(MatchError(ContainSubstring("not ed25519")))

		enc := filepath.Join(dir, "enc")
		out, code = runWithin(time.Minute, "ssh-keygen to generate an encrypted ed25519 key", "", nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "secretphrase", "-f", enc)
		Expect(code).To(BeZero(), "ssh-keygen failed:\n%s", out)
		encPEM, err := os.ReadFile(enc)
		Expect(err).NotTo(HaveOccurred())
		_, err = cloudinit.ParseHostKey(encPEM)
		Expect(err).To(MatchError(ContainSubstring("encrypted")))

		_, err = cloudinit.ParseHostKey([]byte("-----BEGIN GARBAGE-----\nc2VjcmV0\n-----END GARBAGE-----\n"))
		Expect(err).To(MatchError(ContainSubstring("not an OpenSSH private key")))
		Expect(err.Error()).NotTo(ContainSubstring("c2VjcmV0"))
	})
})

// expectBashSyntax fails unless bash -n accepts script.
func expectBashSyntax(script string) {
	GinkgoHelper()
	out, code := runWithin(30*time.Second, "bash -n to check a script's syntax", "", strings.NewReader(script), "bash", "-n")
	Expect(code).To(BeZero(), "bash -n rejected the script:\n%s\n%s", out, script)
}
