package cloudinit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/cloudinit"
)

// fixturePasswords are fixed so the golden files are deterministic.
var fixturePasswords = cloudinit.Passwords{
	Admin:        "fixtureAdmin01",
	Database:     "fixtureDatabase02",
	RabbitMQ:     "fixtureRabbit03",
	Service:      "fixtureService04",
	ServiceToken: "fixtureToken05",
}

func revealed(p cloudinit.Passwords) []string {
	return []string{p.Admin.Reveal(), p.Database.Reveal(), p.RabbitMQ.Reveal(), p.Service.Reveal(), p.ServiceToken.Reveal()}
}

// fixtureHostKey is a committed test key, so the goldens are deterministic; no host uses it.
func fixtureHostKey() cloudinit.HostKey {
	GinkgoHelper()
	pem, err := os.ReadFile(filepath.Join("testdata", "hostkey_ed25519.fixture"))
	Expect(err).NotTo(HaveOccurred())
	k, err := cloudinit.ParseHostKey(pem)
	Expect(err).NotTo(HaveOccurred())
	return k
}

func fixtureAuthorizedKey() string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join("testdata", "user_ed25519.pub.fixture"))
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(b))
}

func fixtureInput(role cloudinit.Role) cloudinit.Input {
	GinkgoHelper()
	return cloudinit.Input{
		Config:        devstack.DefaultConfig(),
		Role:          role,
		User:          "cloud",
		AuthorizedKey: fixtureAuthorizedKey(),
		HostKey:       fixtureHostKey(),
		Passwords:     fixturePasswords,
	}
}

// expectGolden compares got with testdata/name, or rewrites it under -update.
func expectGolden(name string, got []byte) {
	GinkgoHelper()
	path := filepath.Join("testdata", name)
	if *update {
		Expect(os.WriteFile(path, got, 0o644)).To(Succeed())
		return
	}
	want, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred(), "golden file %s is missing; run go test ./devstack/cloudinit/ -update", path)
	Expect(string(got)).To(Equal(string(want)), "%s differs from the rendering; if the change is intended, run go test ./devstack/cloudinit/ -update", path)
}

// runWithin runs name with args in dir (the current directory if empty),
// with stdin (nothing if nil), under a context that ends after limit, and
// returns its combined stdout and stderr and its exit code. It fails the
// spec if the program cannot be started, or if it is still running after
// limit, saying that it gave up waiting for what.
func runWithin(limit time.Duration, what, dir string, stdin io.Reader, name string, args ...string) (string, int) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The program runs in its own process group, and the whole group is
	// killed at the limit, so no child it started (a sleep of wait_for)
	// outlives the spec; should one escape the group and hold the output
	// open, Wait stops waiting for it shortly after.
	inOwnProcessGroup(cmd, syscall.SIGKILL)
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		Expect(ctx.Err()).NotTo(HaveOccurred(), "gave up after %s waiting for %s; its output so far:\n%s", limit, what, out.String())
		return out.String(), -1
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		Expect(err).NotTo(HaveOccurred(), "running %s for %s", name, what)
		return out.String(), -1
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// schemaCheck runs Debian's `cloud-init schema --config-file` on doc and
// returns its combined output and whether cloud-init accepted the document.
func schemaCheck(doc []byte) (string, bool) {
	GinkgoHelper()
	bin, err := exec.LookPath("cloud-init")
	Expect(err).NotTo(HaveOccurred(), "cloud-init is not installed; install it (apt-get install cloud-init) to validate rendered user-data")
	f := filepath.Join(GinkgoT().TempDir(), "user-data.yaml")
	Expect(os.WriteFile(f, doc, 0o600)).To(Succeed())
	out, code := runWithin(2*time.Minute, "cloud-init schema to check the rendered user-data", "", nil, bin, "schema", "--config-file", f)
	return out, code == 0 && strings.Contains(out, "Valid cloud-config")
}

// hostKeyBody returns the base64 lines of an OpenSSH private key in PEM
// after the first: the first encodes the openssh-key-v1 header, which is
// the same for every unencrypted ed25519 key, while every later line holds
// bytes of this key (its private half among them).
func hostKeyBody(k cloudinit.HostKey) []string {
	GinkgoHelper()
	var body []string
	for _, line := range strings.Split(string(k.PrivateKeyPEM()), "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			body = append(body, line)
		}
	}
	Expect(len(body)).To(BeNumerically(">", 1), "the host key's PEM has no body after its header")
	return body[1:]
}

// expectNoHostKey fails if text holds any line of k's PEM body that is
// unique to k.
func expectNoHostKey(text string, k cloudinit.HostKey, where string) {
	GinkgoHelper()
	for i, line := range hostKeyBody(k) {
		Expect(text).NotTo(ContainSubstring(line), "%s holds line %d of the private host key", where, i+2)
	}
}

// expectValidCloudConfig fails unless cloud-init's schema check accepts doc.
func expectValidCloudConfig(doc []byte) {
	GinkgoHelper()
	out, ok := schemaCheck(doc)
	Expect(ok).To(BeTrue(), "cloud-init schema rejected the document:\n%s", out)
}
