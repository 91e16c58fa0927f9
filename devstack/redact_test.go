package devstack_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

// expectNone fails unless text holds none of secrets.
func expectNone(text string, secrets ...string) {
	GinkgoHelper()
	for _, secret := range secrets {
		Expect(text).NotTo(ContainSubstring(secret))
	}
}

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
		expectNone(got, "rabbit-pw-1", "db-pw-2", "svc-pw-3", "tok-4", "clouds-pw-5")
		Expect(got).To(ContainSubstring("rabbit://openstack:<redacted>@10.0.3.15:5672/"))
		Expect(got).To(ContainSubstring("ca_key = /etc/octavia/certs/ca.key"), "paths to key files are kept")
		Expect(got).To(ContainSubstring("INFO connecting with <redacted> and <redacted> and <redacted>"))
	})

	It("takes every host's password of a multi-host URL and the options named like credentials", func() {
		conf := `[oslo_messaging_rabbit]
transport_url = rabbit://openstack:rabbit-a-1@10.0.3.15:5672,openstack:rabbit-b-2@10.0.3.16:5672/
[service_user]
send_service_user_token = true
token_cache_time = 300
[barbican]
api_key = api-key-3
# password = commented-4
[glance]
image_url = http://10.0.3.15/image?name=cirros&token=query-tok-5#top
export OS_PASSWORD=exported-6
`
		r := devstack.NewRedactor()
		r.Learn([]byte(conf))
		got := string(r.Redact([]byte(conf + "INFO retrying rabbit-b-2 with api-key-3; service tokens: true; query-tok-5 exported-6\n")))
		expectNone(got, "rabbit-a-1", "rabbit-b-2", "api-key-3", "query-tok-5", "exported-6")
		Expect(got).To(ContainSubstring("rabbit://openstack:<redacted>@10.0.3.15:5672,openstack:<redacted>@10.0.3.16:5672/"))
		Expect(got).To(ContainSubstring("send_service_user_token = true\n"), "a boolean under a token-named option is no secret")
		Expect(got).To(ContainSubstring("token_cache_time = 300\n"), "nor is a number")
		Expect(got).To(ContainSubstring("service tokens: true; <redacted> <redacted>\n"), "so it stays readable in logs")
		Expect(got).To(ContainSubstring("image?name=cirros&token=<redacted>#top"), "query parameters named like credentials are redacted, others kept")
		Expect(got).To(ContainSubstring("INFO retrying <redacted> with <redacted>;"))
		Expect(r.Redact([]byte("commented-4 appears\n"))).To(ContainSubstring("commented-4"), "comments teach nothing")
	})

	DescribeTable("options named like credentials within a line",
		func(in, want string) {
			Expect(string(devstack.NewRedactor().Redact([]byte(in + "\n")))).To(Equal(want + "\n"))
		},
		Entry("name=value", "DEBUG keystoneauth: login user=nova password=mid-pw-1 project=service",
			"DEBUG keystoneauth: login user=nova password=<redacted> project=service"),
		Entry("a header", "REQ: curl -g -i -H \"X-Auth-Token: gAAAAmid-tok-2\" http://10.0.3.15/compute",
			"REQ: curl -g -i -H \"X-Auth-Token: <redacted>\" http://10.0.3.15/compute"),
		Entry("JSON", `body: {"auth": {"password": "mid-pw-3", "name": "admin"}, "token": "mid-tok-4"}`,
			`body: {"auth": {"password": "<redacted>", "name": "admin"}, "token": "<redacted>"}`),
		Entry("a Python dict", "creds {'secret': 'mid-sec-5', 'access': 'a1'}",
			"creds {'secret': '<redacted>', 'access': 'a1'}"),
		Entry("booleans, numbers and paths stay", "INFO service_token_roles_required=true token_cache_time: 300 ssh_key=/root/.ssh/id_ed25519",
			"INFO service_token_roles_required=true token_cache_time: 300 ssh_key=/root/.ssh/id_ed25519"),
		Entry("names that are no credential stay", "INFO www_authenticate_uri=http://10.0.3.15/identity keystone: up at 12:30:45",
			"INFO www_authenticate_uri=http://10.0.3.15/identity keystone: up at 12:30:45"),
	)

	DescribeTable("RedactURLCredentials",
		func(in, want string) { Expect(devstack.RedactURLCredentials(in)).To(Equal(want)) },
		Entry("user information", "mysql+pymysql://nova:pw-1@10.0.3.15/nova", "mysql+pymysql://nova:<redacted>@10.0.3.15/nova"),
		Entry("every host", "rabbit://a:pw-1@h1:5672,b:pw-2@h2:5672/", "rabbit://a:<redacted>@h1:5672,b:<redacted>@h2:5672/"),
		Entry("a user without password", "ssh://stack@10.0.3.15/", "ssh://stack@10.0.3.15/"),
		Entry("query parameters named like credentials", "see http://h/v1?limit=5&X-Auth-Token=tok-1&marker=m and more", "see http://h/v1?limit=5&X-Auth-Token=<redacted>&marker=m and more"),
		Entry("no URL", "password is not a URL", "password is not a URL"),
	)

	DescribeTable("IsSecretName",
		func(name string, secret bool) { Expect(devstack.IsSecretName(name)).To(Equal(secret)) },
		Entry(nil, "ADMIN_PASSWORD", true),
		Entry(nil, "db_passwd", true),
		Entry(nil, "memcache_secret_key", true),
		Entry(nil, "admin_token", true),
		Entry(nil, "apikey", true),
		Entry(nil, "SSH_KEYS", true),
		Entry(nil, "application_credential_id", true),
		Entry(nil, "KEYSTONE_SERVICE_URI", false),
		Entry(nil, "keyring_backend", false),
		Entry(nil, "auth_url", false),
	)
})
