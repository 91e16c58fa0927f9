//go:build linux

package local

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stackgate/stackgate/devstack"
)

func (h *Host) etc(p string) string { return h.path("etc", p) }

func pyMain(module string, args ...string) []string {
	argv := "'" + strings.Join(args, "','") + "'"
	return []string{"/usr/bin/python3", "-c", fmt.Sprintf("import sys; from %s import main; sys.argv=[%s]; sys.exit(main())", module, argv)}
}

func (h *Host) infraServices(pw string) []service {
	n := h.names()
	rmq := h.path("rabbitmq")
	return []service{
		{name: "mariadb", ns: n.controller, args: []string{"/usr/sbin/mariadbd", "--defaults-file=" + h.etc("my.cnf")}},
		{name: "rabbitmq", ns: n.controller, args: []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"}, env: []string{
			"HOME=" + rmq, "ERL_EPMD_ADDRESS=127.0.0.1",
			"RABBITMQ_CONF_ENV_FILE=" + h.etc("rabbitmq-env.conf"),
			"RABBITMQ_CONFIG_FILE=" + rmq + "/rabbitmq",
			"RABBITMQ_ENABLED_PLUGINS_FILE=" + rmq + "/enabled_plugins",
			"RABBITMQ_MNESIA_BASE=" + rmq + "/mnesia", "RABBITMQ_LOG_BASE=" + h.path(dirLogs, "rabbitmq"),
			"RABBITMQ_PID_FILE=" + h.path("daemons", "rabbitmq.pid"),
			"RABBITMQ_DEFAULT_USER=openstack", "RABBITMQ_DEFAULT_PASS=" + pw,
		}},
	}
}

// controllerServices are the OpenStack services of the controller, after keystone.
func (h *Host) controllerServices() []service {
	n := h.names()
	c := n.controller
	nova := h.etc("nova/nova.conf")
	neutron := []string{"--config-file", h.etc("neutron.conf")}
	node := h.etc("node-controller.conf")
	cinder := h.etc("cinder.conf")
	var libvirtd []service
	if h.virt != VirtFake {
		libvirtd = append(libvirtd, h.libvirtService("controller", c))
	}
	return append(append(libvirtd, []service{
		{name: "placement", ns: c, args: []string{"uwsgi", "--ini", h.etc("uwsgi-placement.ini")}},
		{name: "nova-api", ns: c, args: []string{"uwsgi", "--ini", h.etc("uwsgi-nova-api.ini")}},
		{name: "nova-conductor", ns: c, args: []string{"nova-conductor", "--config-file", nova}},
		{name: "nova-scheduler", ns: c, args: []string{"nova-scheduler", "--config-file", nova}},
		h.novaCompute("controller", c),
		{name: "neutron-server", ns: c, args: append(append([]string{"neutron-server"}, neutron...), "--config-file", h.etc("ml2_conf.ini"))},
		{name: "lb-agent-controller", ns: c, neutronAgent: true, args: h.withEbtablesFix(append(append([]string{"neutron-linuxbridge-agent"}, neutron...), "--config-file", h.etc("linuxbridge-controller.ini"), "--config-file", node))},
		{name: "l3-agent", ns: c, neutronAgent: true, args: append(append([]string{"neutron-l3-agent"}, neutron...), "--config-file", h.etc("l3_agent.ini"), "--config-file", node)},
		{name: "dhcp-agent", ns: c, neutronAgent: true, args: append(append([]string{"neutron-dhcp-agent"}, neutron...), "--config-file", h.etc("dhcp_agent.ini"), "--config-file", node)},
		{name: "glance-api", ns: c, args: []string{"glance-api", "--config-file", h.etc("glance-api.conf")}},
		{name: "cinder-api", ns: c, args: []string{"cinder-api", "--config-file", cinder}},
		{name: "cinder-scheduler", ns: c, args: []string{"cinder-scheduler", "--config-file", cinder}},
		{name: "cinder-volume-controller", ns: c, args: pyMain("cinder.cmd.volume", "cinder-volume", "--config-file", cinder, "--config-file", node)},
		{name: "octavia-api", ns: c, args: []string{"uwsgi", "--ini", h.etc("uwsgi-octavia-api.ini")}},
		h.octaviaWorker(),
	}...), h.metadataServices()...)
}

// novaCompute is a node's nova-compute. With real VMs it starts once the
// node's libvirtd has created its socket (bounded: 60 s), since a
// nova-compute that finds no libvirt exits.
func (h *Host) novaCompute(node, ns string) service {
	args := pyMain("nova.cmd.compute", "nova-compute", "--config-file", h.etc("nova/nova.conf"), "--config-file", h.etc("node-"+node+".conf"))
	if h.virt != VirtFake {
		wait := `i=0; while [ ! -S "$0" ]; do i=$((i+1)); if [ $i -gt 600 ]; then echo "stackgate: libvirtd's socket $0 did not appear within 60s" >&2; exit 1; fi; sleep 0.1; done; shift; exec "$@"`
		args = append([]string{"/bin/sh", "-c", wait, h.libvirtSocket(node), "--"}, args...)
	}
	return service{name: "nova-compute-" + node, ns: ns, args: args}
}

// octaviaWorker reads, after octavia.conf, the amphorae's settings the seed
// writes to octavia/conf.d (ids of what it created).
func (h *Host) octaviaWorker() service {
	return service{name: "octavia-worker", ns: h.names().controller, args: []string{"octavia-worker", "--config-file", h.etc("octavia.conf"), "--config-dir", h.path("octavia", "conf.d")}}
}

// amphoraConf is the file of octavia-worker's settings that the seed writes.
func (h *Host) amphoraConf() string { return h.path("octavia", "conf.d", "amphora.conf") }

// workerServices are the worker's services and its bounded registration step.
func (h *Host) workerServices(cfg devstack.Config) []service {
	n := h.names()
	w := n.worker
	node := h.etc("node-worker.conf")
	pw, _ := h.password()
	var libvirtd []service
	if h.virt != VirtFake {
		libvirtd = append(libvirtd, h.libvirtService("worker", w))
	}
	return append(libvirtd, []service{
		h.novaCompute("worker", w),
		{name: "lb-agent-worker", ns: w, args: h.withEbtablesFix([]string{"neutron-linuxbridge-agent", "--config-file", h.etc("neutron.conf"), "--config-file", h.etc("linuxbridge-worker.ini"), "--config-file", node})},
		{name: "cinder-volume-worker", ns: w, args: pyMain("cinder.cmd.volume", "cinder-volume", "--config-file", h.etc("cinder.conf"), "--config-file", node)},
		{name: "register-worker", ns: n.controller, args: []string{"/usr/bin/python3", h.etc("register-worker.py")}, env: append(h.scriptEnv(cfg, pw),
			"WORKER_HOST=worker", "VOLUME_BACKEND="+volumeBackend, "FAILURE_DOMAIN_ALT="+cfg.FailureDomainAlt, fmt.Sprintf("REGISTER_TIMEOUT=%d", int(h.workerTimeout.Seconds())))},
	}...)
}

func (h *Host) scriptEnv(cfg devstack.Config, pw string) []string {
	return []string{"OS_AUTH_URL=" + fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP), "OS_PASSWORD=" + pw, "CONTROLLER_IP=" + cfg.ControllerIP.String()}
}

// longRunning lists the services whose processes must stay alive.
func (h *Host) longRunning(cfg devstack.Config) []string {
	names := append([]string{"mariadb", "rabbitmq", "keystone"}, h.cephNames()...)
	for _, s := range h.controllerServices() {
		names = append(names, s.name)
	}
	return names
}

// startInfra starts MariaDB and RabbitMQ and, when fresh, creates the
// databases and their user.
func (h *Host) startInfra(ctx context.Context, fresh bool) error {
	pw, err := h.password()
	if err != nil {
		return err
	}
	n := h.names()
	if fresh {
		_ = os.RemoveAll(h.path("mysql"))
		_ = os.RemoveAll(h.path("rabbitmq", "mnesia"))
		if _, err := h.run(ctx, "mariadb-install-db", "", nil, "", "mariadb-install-db", "--defaults-file="+h.etc("my.cnf"), "--skip-test-db", "--auth-root-authentication-method=socket"); err != nil {
			return err
		}
	}
	for _, s := range h.infraServices(pw) {
		if err := h.start(s); err != nil {
			return err
		}
	}
	alive := func() error { return h.checkAlive("mariadb", "rabbitmq") }
	if err := poll(ctx, "mariadb", 60*time.Second, alive, func(ctx context.Context) (bool, string) {
		out, err := h.run(ctx, "mariadb-ping", "", nil, "", "mysqladmin", "--defaults-file="+h.etc("my.cnf"), "ping")
		return err == nil, strings.TrimSpace(out)
	}); err != nil {
		return err
	}
	rabbit := net.JoinHostPort(h.cfgControllerIP(), "5672")
	if err := poll(ctx, "rabbitmq on "+rabbit, 90*time.Second, alive, func(ctx context.Context) (bool, string) {
		c, err := nsDialer(n.controller)(ctx, "tcp", rabbit)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	}); err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	var sql strings.Builder
	for _, db := range []string{"keystone", "placement", "nova_api", "nova", "nova_cell0", "neutron", "glance", "cinder", "octavia"} {
		fmt.Fprintf(&sql, "DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;\n", db, db)
	}
	fmt.Fprintf(&sql, "CREATE USER IF NOT EXISTS 'os'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'os'@'%%'; FLUSH PRIVILEGES;\n", pw)
	_, err = h.run(ctx, "create-databases", "", nil, sql.String(), "mysql", "--defaults-file="+h.etc("my.cnf"))
	return err
}

func (h *Host) cfgControllerIP() string {
	b, err := os.ReadFile(h.etc("my.cnf"))
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "bind-address" {
				return strings.TrimSpace(v)
			}
		}
	}
	return devstack.DefaultControllerIP.String()
}

// syncSchemas creates every service's database schema, in parallel; keystone
// is bootstrapped, started and given its catalog as soon as its schema
// exists, while the others are still being created.
func (h *Host) syncSchemas(ctx context.Context, cfg devstack.Config) error {
	pw, err := h.password()
	if err != nil {
		return err
	}
	c := h.names().controller
	ks := h.etc("keystone.conf")
	nova := h.etc("nova/nova.conf")
	url := fmt.Sprintf("http://%s:5000/v3/", cfg.ControllerIP)
	seq := func(step string, env []string, cmds ...[]string) func() error {
		return func() error {
			for i, cmd := range cmds {
				if _, err := h.run(ctx, fmt.Sprintf("%s-%d", step, i+1), c, env, "", cmd...); err != nil {
					return err
				}
			}
			return nil
		}
	}
	keystone := seq("sync-keystone", []string{"OS_BOOTSTRAP_PASSWORD=" + pw},
		[]string{"keystone-manage", "--config-file", ks, "db_sync"},
		[]string{"keystone-manage", "--config-file", ks, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root"},
		[]string{"keystone-manage", "--config-file", ks, "credential_setup", "--keystone-user", "root", "--keystone-group", "root"},
		[]string{"keystone-manage", "--config-file", ks, "bootstrap", "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
			"--bootstrap-public-url", url, "--bootstrap-region-id", "RegionOne"})
	return parallel(
		func() error {
			if err := keystone(); err != nil {
				return err
			}
			return h.startKeystone(ctx, cfg, true)
		},
		seq("sync-placement", nil, []string{"placement-manage", "--config-file", h.etc("placement/placement.conf"), "db", "sync"}),
		seq("sync-nova", nil,
			[]string{"nova-manage", "--config-file", nova, "api_db", "sync"},
			[]string{"nova-manage", "--config-file", nova, "cell_v2", "map_cell0"},
			[]string{"nova-manage", "--config-file", nova, "cell_v2", "create_cell", "--name", "cell1"},
			[]string{"nova-manage", "--config-file", nova, "db", "sync"}),
		seq("sync-neutron", nil, []string{"neutron-db-manage", "--config-file", h.etc("neutron.conf"), "--config-file", h.etc("ml2_conf.ini"), "upgrade", "head"}),
		seq("sync-glance", nil, []string{"glance-manage", "--config-file", h.etc("glance-api.conf"), "db_sync"}),
		seq("sync-cinder", nil, []string{"cinder-manage", "--config-file", h.etc("cinder.conf"), "db", "sync"}),
		seq("sync-octavia", nil, []string{"octavia-db-manage", "--config-file", h.etc("octavia.conf"), "upgrade", "head"}),
	)
}

// startKeystone starts keystone, waits for it and, when fresh, registers the
// service users and the catalog.
func (h *Host) startKeystone(ctx context.Context, cfg devstack.Config, fresh bool) error {
	n := h.names()
	if err := h.start(service{name: "keystone", ns: n.controller, args: []string{"uwsgi", "--ini", h.etc("uwsgi-keystone.ini")}}); err != nil {
		return err
	}
	client := nsHTTPClient(n.controller)
	url := fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP)
	if err := poll(ctx, "keystone at "+url, 90*time.Second, func() error { return h.checkAlive("keystone") }, func(ctx context.Context) (bool, string) {
		code, err := httpStatus(ctx, client, url)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("HTTP %d", code)
	}); err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	pw, err := h.password()
	if err != nil {
		return err
	}
	_, err = h.run(ctx, "register", n.controller, h.scriptEnv(cfg, pw), "", "/usr/bin/python3", h.etc("register.py"))
	return err
}

// seed creates what CAPO's suites expect (seed.py).
func (h *Host) seed(ctx context.Context, cfg devstack.Config) error {
	pw, err := h.password()
	if err != nil {
		return err
	}
	env := append(h.scriptEnv(cfg, pw), "CONTROLLER_HOST=controller", "FAILURE_DOMAIN="+cfg.FailureDomain,
		"VOLUME_TYPE="+cfg.VolumeTypeAlt, "FLOATING_CIDR="+cfg.FloatingRange.Masked().String(),
		"FLOATING_GATEWAY="+gateway(cfg.FloatingRange).String(), "DISCOVERY_TIMEOUT=120",
		"OCTAVIA_AMPHORA_CONF="+h.amphoraConf())
	if h.virt != VirtFake {
		img, err := h.guestImage(ctx)
		if err != nil {
			return err
		}
		env = append(env, "GUEST_KERNEL="+img.Kernel, "GUEST_RAMDISK="+img.Initramfs, "GUEST_ID="+img.ID, "GUEST_CMDLINE="+guestCmdline)
	}
	before, _ := os.ReadFile(h.amphoraConf())
	if _, err = h.run(ctx, "seed", h.names().controller, env, "", "/usr/bin/python3", h.etc("seed.py")); err != nil {
		return err
	}
	after, err := os.ReadFile(h.amphoraConf())
	if err != nil {
		return fmt.Errorf("seed: octavia's amphora settings: %w", err)
	}
	if string(before) == string(after) {
		return nil
	}
	// octavia-worker reads them when it starts. Restarted, it keeps its
	// queue, so a request sent meanwhile waits for it.
	if err := h.stopOne(ctx, "octavia-worker", 15*time.Second); err != nil {
		return fmt.Errorf("restarting octavia-worker with the amphora settings: %w", err)
	}
	return h.start(h.octaviaWorker())
}
