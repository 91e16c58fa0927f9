package cloudinit_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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

// schemaCheck runs Debian's `cloud-init schema --config-file` on doc and
// returns its combined output and whether cloud-init accepted the document.
func schemaCheck(doc []byte) (string, bool) {
	GinkgoHelper()
	bin, err := exec.LookPath("cloud-init")
	Expect(err).NotTo(HaveOccurred(), "cloud-init is not installed; install it (apt-get install cloud-init) to validate rendered user-data")
	f := filepath.Join(GinkgoT().TempDir(), "user-data.yaml")
	Expect(os.WriteFile(f, doc, 0o600)).To(Succeed())
	var out bytes.Buffer
	cmd := exec.Command(bin, "schema", "--config-file", f)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		Fail("running cloud-init schema: " + err.Error())
	}
	return out.String(), err == nil && strings.Contains(out.String(), "Valid cloud-config")
}

// expectValidCloudConfig fails unless cloud-init's schema check accepts doc.
func expectValidCloudConfig(doc []byte) {
	GinkgoHelper()
	out, ok := schemaCheck(doc)
	Expect(ok).To(BeTrue(), "cloud-init schema rejected the document:\n%s", out)
}
