package devstack_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("Redactor", func() {
	conf := `[DEFAULT]
transport_url = rabbit://openstack:rabbit-pw-1@10.0.3.15:5672/
[database]
connection = mysql+pymysql://os:db-pw-2@10.0.3.15/nova
[keystone_authtoken]
password = svc-pw-3
ca_key = /etc/octavia/certs/ca.key
admin_token = tok-4
`
	It("removes given, learnt and URL secrets everywhere, and keeps the rest", func() {
		r := devstack.NewRedactor("clouds-pw-5")
		r.Learn([]byte(conf))
		got := string(r.Redact([]byte(conf + "INFO connecting with svc-pw-3 and clouds-pw-5 and db-pw-2\n")))
		for _, secret := range []string{"rabbit-pw-1", "db-pw-2", "svc-pw-3", "tok-4", "clouds-pw-5"} {
			Expect(got).NotTo(ContainSubstring(secret))
		}
		Expect(got).To(ContainSubstring("rabbit://openstack:<redacted>@10.0.3.15:5672/"))
		Expect(got).To(ContainSubstring("ca_key = /etc/octavia/certs/ca.key"), "paths to key files are kept")
		Expect(got).To(ContainSubstring("INFO connecting with <redacted> and <redacted> and <redacted>"))
	})
})
