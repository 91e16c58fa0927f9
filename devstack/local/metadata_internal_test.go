//go:build linux

package local

import (
	"os"
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("the metadata service's configuration", func() {
	It("derives one shared secret from the password, not the password itself", func() {
		s := metadataSecret("0123456789abcdef01234567")
		Expect(s).To(MatchRegexp(`^[0-9a-f]{64}$`))
		Expect(metadataSecret("0123456789abcdef01234567")).To(Equal(s), "the same password gives the same secret")
		Expect(metadataSecret("another password of 24 c")).NotTo(Equal(s))
		Expect(s).NotTo(ContainSubstring("0123456789abcdef01234567"))
	})

	It("gives nova and neutron's metadata agent the same secret and forces no config drive", func() {
		if _, err := os.Stat("/etc/nova/api-paste.ini"); err != nil {
			Skip("nova-api is not installed (/etc/nova/api-paste.ini): the configs cannot be rendered")
		}
		h, err := New(WithStateDir(GinkgoT().TempDir()), WithVirt(VirtQEMU))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.MkdirAll(h.path("etc"), 0o700)).To(Succeed())
		cfg := devstack.DefaultConfig().WithDefaults()
		Expect(h.renderConfigs(cfg)).To(Succeed())
		pw, err := h.password()
		Expect(err).NotTo(HaveOccurred())
		secret := metadataSecret(pw)

		read := func(name string) string {
			GinkgoHelper()
			b, err := os.ReadFile(h.etc(name))
			Expect(err).NotTo(HaveOccurred())
			fi, err := os.Stat(h.etc(name))
			Expect(err).NotTo(HaveOccurred())
			Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o600)), "%s holds the secret: only root reads it", name)
			return string(b)
		}
		nova := read("nova/nova.conf")
		Expect(nova).NotTo(ContainSubstring("force_config_drive"))
		Expect(nova).To(MatchRegexp(`(?s)\[neutron\].*\nservice_metadata_proxy = true\nmetadata_proxy_shared_secret = ` + secret + `\n`))
		Expect(read("metadata_agent.ini")).To(And(
			ContainSubstring("nova_metadata_host = "+cfg.ControllerIP.String()+"\n"),
			ContainSubstring("nova_metadata_port = 8775\n"),
			ContainSubstring("metadata_proxy_shared_secret = "+secret+"\n"),
		))
		Expect(read("uwsgi-nova-api-metadata.ini")).To(And(
			ContainSubstring("http-socket = "+cfg.ControllerIP.String()+":8775\n"),
			ContainSubstring("wsgi-file = /usr/bin/nova-metadata-wsgi\n"),
		))
		Expect(read("l3_agent.ini")).To(MatchRegexp(`(?m)^enable_metadata_proxy = true$`))
		Expect(read("dhcp_agent.ini")).To(MatchRegexp(`(?m)^enable_isolated_metadata = true$`))
		Expect(regexp.MustCompile(regexp.QuoteMeta(pw)).MatchString(read("metadata_agent.ini"))).To(BeFalse(), "the agent gets the derived secret, not the password")
	})
})
