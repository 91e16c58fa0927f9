package cloudinit_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/cloudinit"
)

// localConfLine is every kind of line DevStack's local.conf parser accepts.
var localConfLine = regexp.MustCompile(`^(|#.*|\[\[(local\|localrc|post-config\|[^]|]+)\]\]|\[[^]]+\]|[A-Za-z_][A-Za-z0-9_]*=.*|enable_plugin \S+ \S+ \S+|[a-z_]+ = .*)$`)

func controllerLocalConf() *cloudinit.LocalConf {
	GinkgoHelper()
	lc, err := cloudinit.NewControllerLocalConf(devstack.DefaultConfig(), fixturePasswords)
	Expect(err).NotTo(HaveOccurred())
	return lc
}

func workerLocalConf() *cloudinit.LocalConf {
	GinkgoHelper()
	lc, err := cloudinit.NewWorkerLocalConf(devstack.DefaultConfig(), fixturePasswords)
	Expect(err).NotTo(HaveOccurred())
	return lc
}

func mustRender(lc *cloudinit.LocalConf) string {
	GinkgoHelper()
	b, err := lc.Render()
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

var _ = Describe("LocalConf", func() {
	It("renders the controller's and the worker's local.conf as in the golden files", func() {
		expectGolden("controller-local.conf", []byte(mustRender(controllerLocalConf())))
		expectGolden("worker-local.conf", []byte(mustRender(workerLocalConf())))
	})

	It("writes only lines DevStack's meta-section parser reads, localrc first", func() {
		for _, lc := range []*cloudinit.LocalConf{controllerLocalConf(), workerLocalConf()} {
			text := mustRender(lc)
			Expect(text).To(HavePrefix("[[local|localrc]]\n"))
			for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
				Expect(line).To(MatchRegexp(localConfLine.String()), "line %d", i+1)
			}
		}
	})

	It("renders the same text every time despite its maps", func() {
		lc := controllerLocalConf()
		lc.Vars = map[string]string{"B_VAR": "2", "A_VAR": "1", "C_VAR": "3"}
		lc.Set("/etc/x.conf", "zeta", "z", "1").Set("/etc/x.conf", "alpha", "a", "2").Set("/etc/x.conf", "DEFAULT", "d", "3")
		first := mustRender(lc)
		for range 20 {
			Expect(mustRender(lc)).To(Equal(first))
		}
		Expect(first).To(ContainSubstring("A_VAR=1\nB_VAR=2\nC_VAR=3\n"))
		Expect(first).To(ContainSubstring("[[post-config|/etc/x.conf]]\n[DEFAULT]\nd = 3\n\n[alpha]\na = 2\n\n[zeta]\nz = 1\n"))
	})

	DescribeTable("renders each setting",
		func(node func() *cloudinit.LocalConf, change func(*cloudinit.LocalConf), want, notWant []string) {
			lc := node()
			change(lc)
			text := mustRender(lc)
			for _, w := range want {
				Expect(text).To(ContainSubstring(w))
			}
			for _, w := range notWant {
				Expect(text).NotTo(ContainSubstring(w))
			}
		},
		Entry("the controller's defaults", controllerLocalConf, func(*cloudinit.LocalConf) {},
			[]string{
				"HOST_IP=10.0.3.15\n", "SERVICE_HOST=10.0.3.15\n", "FLOATING_RANGE=172.24.4.0/24\n",
				"Q_AGENT=ovn\n", "Q_ML2_PLUGIN_MECHANISM_DRIVERS=ovn,logger\n", "ENABLE_CHASSIS_AS_GW=True\n",
				"OVN_L3_CREATE_PUBLIC_NETWORK=True\n", "enable_plugin octavia https://opendev.org/openstack/octavia stable/2025.2\n",
				"[[post-config|$NOVA_CONF]]\n[DEFAULT]\ncpu_allocation_ratio = 2.0\ndefault_schedule_zone = testaz1\n",
				"discover_hosts_in_cells_interval = 2\n",
				"[[post-config|$CINDER_CONF]]\n[DEFAULT]\nstorage_availability_zone = testaz1\n",
				"[[post-config|/$Q_PLUGIN_CONF_FILE]]\n[ovn]\ndns_servers = 8.8.8.8\n",
				"service_plugins = trunk,router\n",
			},
			[]string{"RABBIT_HOST=", "DATABASE_HOST="}),
		Entry("the worker's defaults", workerLocalConf, func(*cloudinit.LocalConf) {},
			[]string{
				"HOST_IP=10.0.3.16\n", "SERVICE_HOST=10.0.3.15\n", "RABBIT_HOST=10.0.3.15\n", "DATABASE_HOST=10.0.3.15\n",
				"GLANCE_HOSTPORT=10.0.3.15:9292\n", "ENABLE_CHASSIS_AS_GW=False\n", "Q_ML2_PLUGIN_MECHANISM_DRIVERS=ovn\n",
				"DISABLED_SERVICES=horizon,ovn-northd,q-agt,q-dhcp,q-l3,q-meta,q-metering,q-svc,q-vpn\n",
				"[[post-config|$CINDER_CONF]]\n[DEFAULT]\nstorage_availability_zone = testaz2\n",
			},
			[]string{"FLOATING_RANGE=", "octavia", "OVN_L3_CREATE_PUBLIC_NETWORK", "default_schedule_zone", "dns_servers"}),
		Entry("the release branch", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Branch = "master" },
			[]string{"enable_plugin neutron https://opendev.org/openstack/neutron master\n"}, []string{"stable/"}),
		Entry("a plugin's own repository and branch", controllerLocalConf, func(lc *cloudinit.LocalConf) {
			lc.Plugins = append(lc.Plugins, cloudinit.Plugin{Name: "designate", Repo: "https://example.org/designate", Branch: "feature/x"})
		}, []string{"enable_plugin neutron https://opendev.org/openstack/neutron stable/2025.2\nenable_plugin designate https://example.org/designate feature/x\nenable_plugin octavia "}, nil),
		Entry("the MTU", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.MTU = 1450 },
			[]string{"PUBLIC_BRIDGE_MTU=1450\n", "global_physnet_mtu = 1450\n"}, []string{"1400"}),
		Entry("DNS servers", controllerLocalConf, func(lc *cloudinit.LocalConf) {
			lc.DNSNameservers = []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9")}
		}, []string{"dns_servers = 1.1.1.1,9.9.9.9\n"}, []string{"8.8.8.8"}),
		Entry("no Octavia", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Octavia = false },
			nil, []string{"octavia", "o-api", "o-hm"}),
		Entry("Cinder's backends, zone and backing file", workerLocalConf, func(lc *cloudinit.LocalConf) {
			lc.Cinder = cloudinit.Cinder{Backends: []string{"lvm:lvmdriver-1", "lvm:lvmdriver-2"}, AvailabilityZone: "az-x", VolumeBackingFileSize: "20G"}
		}, []string{"CINDER_ENABLED_BACKENDS=lvm:lvmdriver-1,lvm:lvmdriver-2\n", "VOLUME_BACKING_FILE_SIZE=20G\n", "storage_availability_zone = az-x\n"}, []string{"100G"}),
		Entry("the fixed range", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.FixedRange = netip.MustParsePrefix("10.1.0.0/20") },
			[]string{"FIXED_RANGE=10.1.0.0/20\n"}, nil),
		Entry("enabled and disabled services, sorted and deduplicated", workerLocalConf, func(lc *cloudinit.LocalConf) {
			lc.EnabledServices = []string{"n-cpu", "c-vol", "n-cpu"}
			lc.DisabledServices = []string{"q-svc", "horizon"}
		}, []string{"ENABLED_SERVICES=c-vol,n-cpu\n", "DISABLED_SERVICES=horizon,q-svc\n"}, nil),
		Entry("OVN from the distribution", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.OVN.BuildFromSource = false },
			nil, []string{"OVN_BUILD_FROM_SOURCE", "OVN_BRANCH", "OVS_BRANCH"}),
		Entry("QEMU instead of KVM", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.LibvirtType = "qemu" },
			[]string{"LIBVIRT_TYPE=qemu\n"}, nil),
		Entry("further variables, quoted when the shell needs it", controllerLocalConf, func(lc *cloudinit.LocalConf) {
			lc.Vars = map[string]string{"NOVA_VNC_ENABLED": "True", "EXTRA_OPTS": "a b 'c'"}
		}, []string{"NOVA_VNC_ENABLED=True\n", `EXTRA_OPTS='a b '\''c'\'''` + "\n"}, nil),
		Entry("a post-config option overriding a derived one", controllerLocalConf, func(lc *cloudinit.LocalConf) {
			lc.Set(cloudinit.NovaConf, "DEFAULT", "default_schedule_zone", "nova")
			lc.Set(cloudinit.NeutronConf, "DEFAULT", "global_physnet_mtu", "9000")
		}, []string{"default_schedule_zone = nova\n", "global_physnet_mtu = 9000\n"}, []string{"default_schedule_zone = testaz1", "global_physnet_mtu = 1400"}),
		Entry("a custom availability zone from the config", func() *cloudinit.LocalConf {
			lc, err := cloudinit.NewWorkerLocalConf(devstack.Config{FailureDomain: "az-a", FailureDomainAlt: "az-b"}, fixturePasswords)
			Expect(err).NotTo(HaveOccurred())
			return lc
		}, func(*cloudinit.LocalConf) {}, []string{"storage_availability_zone = az-b\n"}, []string{"testaz"}),
	)

	Describe("passwords", func() {
		It("are in the rendering and redacted in String, fmt and JSON", func() {
			lc := controllerLocalConf()
			text := mustRender(lc)
			for _, p := range revealed(fixturePasswords) {
				Expect(text).To(ContainSubstring(p), "the check below must be able to fail")
			}
			Expect(lc.String()).To(ContainSubstring("ADMIN_PASSWORD=<redacted>\n"))
			js, err := json.Marshal(lc)
			Expect(err).NotTo(HaveOccurred())
			for _, shown := range []string{lc.String(), fmt.Sprintf("%v", *lc), fmt.Sprintf("%+v", lc), fmt.Sprintf("%#v", lc), fmt.Sprint(lc.Passwords.Admin), string(js)} {
				for _, p := range revealed(fixturePasswords) {
					Expect(shown).NotTo(ContainSubstring(p))
				}
			}
			Expect(lc.String()).To(Equal(strings.NewReplacer(
				"fixtureAdmin01", "<redacted>", "fixtureDatabase02", "<redacted>", "fixtureRabbit03", "<redacted>",
				"fixtureService04", "<redacted>", "fixtureToken05", "<redacted>").Replace(text)))
		})

		It("are redacted in String and RenderRedacted under names that suggest a credential, inside other values and in URLs", func() {
			const (
				option  = "plainOptionSecret42"
				token   = "plainVarToken43"
				urlPass = "unknownUrlPass44"
			)
			lc := controllerLocalConf()
			lc.Vars = map[string]string{
				"SOME_TOKEN":       token,
				"NOVA_VNC_ENABLED": "True",
				"KEYSTONE_REGION":  "RegionTwo",
				"COPY_OF_RABBIT":   fixturePasswords.RabbitMQ.Reveal(),
			}
			lc.Set(cloudinit.NovaConf, "keystone_authtoken", "admin_password", option)
			lc.Set(cloudinit.NovaConf, "DEFAULT", "transport_url", "rabbit://stackrabbit:"+fixturePasswords.RabbitMQ.Reveal()+"@10.0.3.15:5672,other:"+urlPass+"@10.0.3.16:5672/")
			lc.Set(cloudinit.NovaConf, "database", "connection", "mysql+pymysql://root:"+urlPass+"@10.0.3.15/nova?charset=utf8")
			lc.Set(cloudinit.NovaConf, "DEFAULT", "my_block_storage_ip", "10.0.3.15")

			text := mustRender(lc)
			in := fixtureInput(cloudinit.Controller)
			in.LocalConf = lc
			redacted, err := cloudinit.RenderRedacted(in)
			Expect(err).NotTo(HaveOccurred())
			shown := map[string]string{
				"String":         lc.String(),
				"RenderRedacted": string(redacted),
				"%v":             fmt.Sprintf("%v", lc),
				"%+v of a value": fmt.Sprintf("%+v", *lc),
				"%#v":            fmt.Sprintf("%#v", lc),
				"%#v of a value": fmt.Sprintf("%#v", *lc),
				"%s of a value":  fmt.Sprintf("%s", *lc),
			}

			for _, secret := range []string{option, token, urlPass, fixturePasswords.RabbitMQ.Reveal()} {
				Expect(text).To(ContainSubstring(secret), "local.conf as DevStack reads it keeps every value")
				for where, s := range shown {
					Expect(s).NotTo(ContainSubstring(secret), "%s shows a credential", where)
				}
			}
			Expect(text).To(ContainSubstring("admin_password = " + option + "\n"))
			Expect(text).To(ContainSubstring("SOME_TOKEN=" + token + "\n"))
			Expect(lc.String()).To(ContainSubstring("admin_password = <redacted>\n"))
			Expect(lc.String()).To(ContainSubstring("SOME_TOKEN=<redacted>\n"))
			Expect(lc.String()).To(ContainSubstring("COPY_OF_RABBIT=<redacted>\n"))
			Expect(lc.String()).To(ContainSubstring("transport_url = rabbit://stackrabbit:<redacted>@10.0.3.15:5672,other:<redacted>@10.0.3.16:5672/\n"))
			Expect(lc.String()).To(ContainSubstring("connection = mysql+pymysql://root:<redacted>@10.0.3.15/nova?charset=utf8\n"))
			for _, harmless := range []string{"NOVA_VNC_ENABLED=True\n", "KEYSTONE_REGION=RegionTwo\n", "my_block_storage_ip = 10.0.3.15\n", "[keystone_authtoken]\n"} {
				Expect(text).To(ContainSubstring(harmless))
				Expect(lc.String()).To(ContainSubstring(harmless), "String keeps what is no credential")
			}
		})

		DescribeTable("String redacts by the variable's or option's name, in any case",
			func(name string, redacted bool) {
				lc := controllerLocalConf()
				const value = "aValueOfSomeLength"
				variable := "EXTRA_" + strings.ToUpper(name)
				lc.Vars = map[string]string{variable: value}
				lc.Set(cloudinit.NovaConf, "DEFAULT", name, value)
				Expect(mustRender(lc)).To(ContainSubstring(value), "the check below must be able to fail")
				if redacted {
					Expect(lc.String()).NotTo(ContainSubstring(value))
					Expect(lc.String()).To(ContainSubstring(variable + "=<redacted>\n"))
					Expect(lc.String()).To(ContainSubstring(name + " = <redacted>\n"))
				} else {
					Expect(lc.String()).To(ContainSubstring(variable + "=" + value + "\n"))
					Expect(lc.String()).To(ContainSubstring(name + " = " + value + "\n"))
				}
			},
			Entry(nil, "admin_password", true),
			Entry(nil, "Db_Passwd", true),
			Entry(nil, "client_secret", true),
			Entry(nil, "some_token", true),
			Entry(nil, "tokens_of_x", true),
			Entry(nil, "credential", true),
			Entry(nil, "application_credentials_x", true),
			Entry(nil, "api_key", true),
			Entry(nil, "apikey", true),
			Entry(nil, "fixed_key", true),
			Entry(nil, "keys", true),
			Entry(nil, "keystone_region", false),
			Entry(nil, "monkeyshines", false),
			Entry(nil, "cpu_allocation_ratio", false),
		)

		It("are generated random, valid and distinct", func() {
			a, err := cloudinit.NewPasswords()
			Expect(err).NotTo(HaveOccurred())
			b, err := cloudinit.NewPasswords()
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Validate()).To(Succeed())
			Expect(a.Admin.Reveal()).To(MatchRegexp(`^[A-Za-z0-9]{24}$`))
			Expect(a.Admin).NotTo(Equal(b.Admin))
			Expect(a.Admin).NotTo(Equal(a.Database))
		})
	})

	Describe("Validate", func() {
		const badPassword = "not a 'valid' password!"
		DescribeTable("names the field and the fix",
			func(node func() *cloudinit.LocalConf, change func(*cloudinit.LocalConf), want ...string) {
				lc := node()
				change(lc)
				err := lc.Validate()
				Expect(err).To(HaveOccurred())
				for _, w := range want {
					Expect(err.Error()).To(ContainSubstring(w))
				}
				Expect(err.Error()).NotTo(ContainSubstring(badPassword))
				_, err = lc.Render()
				Expect(err).To(HaveOccurred())
			},
			Entry("empty branch", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Branch = "" }, "LocalConf.Branch", `"master"`),
			Entry("branch with a space", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Branch = "stable/2025.2 x" }, "LocalConf.Branch"),
			Entry("git base that is no URL", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.GitBase = "opendev.org" }, "LocalConf.GitBase", "https://opendev.org"),
			Entry("no host IP", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.HostIP = netip.Addr{} }, "LocalConf.HostIP"),
			Entry("IPv6 service host", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.ServiceHost = netip.MustParseAddr("fd00::1") }, "LocalConf.ServiceHost"),
			Entry("controller without floating range", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.FloatingRange = netip.Prefix{} }, "LocalConf.FloatingRange", "172.24.4.0/24"),
			Entry("worker with a floating range", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.FloatingRange = netip.MustParsePrefix("172.24.4.0/24") }, "LocalConf.FloatingRange", "only the controller"),
			Entry("fixed range overlapping the floating range", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.FixedRange = netip.MustParsePrefix("172.24.0.0/16") }, "LocalConf.FixedRange", "overlap"),
			Entry("MTU too small", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.MTU = 100 }, "LocalConf.MTU", "1280"),
			Entry("empty password", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Passwords.RabbitMQ = "" }, "Passwords.RabbitMQ", "NewPasswords"),
			Entry("password with quotes", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Passwords.Admin = badPassword }, "Passwords.Admin", "letters, digits"),
			Entry("no services", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.EnabledServices = nil }, "LocalConf.EnabledServices"),
			Entry("service both enabled and disabled", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.DisabledServices = append(lc.DisabledServices, "n-cpu") }, `"n-cpu"`, "both enabled and disabled"),
			Entry("service name with a space", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.EnabledServices = []string{"n-cpu c-vol"} }, "LocalConf.EnabledServices"),
			Entry("octavia twice", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Plugins = append(lc.Plugins, cloudinit.Plugin{Name: "octavia"}) }, "LocalConf.Plugins", "twice"),
			Entry("no mechanism drivers", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.OVN.MechanismDrivers = nil }, "LocalConf.OVN.MechanismDrivers"),
			Entry("OVN from source without branches", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.OVN.OVNBranch = "" }, "LocalConf.OVN.BuildFromSource", "branch-24.03"),
			Entry("unknown libvirt type", workerLocalConf, func(lc *cloudinit.LocalConf) { lc.LibvirtType = "xen" }, "LocalConf.LibvirtType", "qemu"),
			Entry("image URL with a comma", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.ImageURLs = []string{"http://a/x.img,http://b/y.img"} }, "LocalConf.ImageURLs"),
			Entry("a variable a typed field owns", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Vars = map[string]string{"ADMIN_PASSWORD": badPassword} }, "ADMIN_PASSWORD", "typed field"),
			Entry("a variable with a line break", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Vars = map[string]string{"X": "a\nb"} }, "LocalConf.Vars", "line break"),
			Entry("a post-config value with a line break", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Set(cloudinit.NovaConf, "DEFAULT", "k", "a\n[[local|localrc]]") }, "LocalConf.PostConfig", "single-line"),
			Entry("a post-config value the shell would run", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Set(cloudinit.NovaConf, "DEFAULT", "k", "$(reboot)") }, "LocalConf.PostConfig", "shell"),
			Entry("a zone with a double quote", func() *cloudinit.LocalConf {
				lc, err := cloudinit.NewWorkerLocalConf(devstack.Config{FailureDomainAlt: `zone"b`}, fixturePasswords)
				Expect(err).NotTo(HaveOccurred())
				return lc
			}, func(*cloudinit.LocalConf) {}, "storage_availability_zone", "double quote"),
			Entry("a plugin repository with shell characters", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Plugins = []cloudinit.Plugin{{Name: "x", Repo: "https://a/$(id)"}} }, "LocalConf.Plugins", "http(s) URL"),
			Entry("a post-config section with brackets", controllerLocalConf, func(lc *cloudinit.LocalConf) { lc.Set(cloudinit.NovaConf, "a]b", "k", "v") }, "LocalConf.PostConfig", "section"),
		)

		It("refuses an invalid devstack.Config in the constructors", func() {
			bad := devstack.Config{FloatingRange: netip.MustParsePrefix("10.0.3.0/24")}
			_, err := cloudinit.NewControllerLocalConf(bad, fixturePasswords)
			Expect(err).To(MatchError(ContainSubstring("overlaps FLOATING_RANGE")))
			_, err = cloudinit.NewWorkerLocalConf(bad, fixturePasswords)
			Expect(err).To(MatchError(ContainSubstring("overlaps FLOATING_RANGE")))
		})
	})
})
