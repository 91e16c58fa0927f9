//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/utils/v2/openstack/clientconfig"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/devstack"
)

// Up brings the environment up, or reuses it when a healthy one runs with the
// same configuration, and returns once every controller API answers and the
// cloud is seeded. The worker starts last and keeps joining in the
// background (detached processes) after Up returns, unless
// WithDeferredWorker was given. A broken environment (some or all of its
// processes gone, for example killed with the session that started them,
// while its namespaces and state directory remain) is restarted from its
// data; state that cannot be restarted from (database or keystone keys
// missing), or a restart that fails, is rebuilt from scratch. On error or
// cancellation everything Up started is removed again.
func (h *Host) Up(ctx context.Context, cfg devstack.Config) (env *devstack.Environment, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := outsidePublicRange(cfg); err != nil {
		return nil, err
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.path(dirLogs), 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	unlock, err := h.lock("up")
	if err != nil {
		return nil, err
	}
	defer unlock()

	start := time.Now()
	env, herr := h.healthy(ctx, cfg)
	if herr == nil {
		h.progress("reuse", time.Since(start), nil)
		h.recordTiming("reuse", time.Since(start))
		return env, nil
	}
	if err := ctx.Err(); err != nil {
		// Interrupted while looking: nothing is known to be unhealthy, and
		// nothing was started.
		return nil, fmt.Errorf("checking the running environment: %w", err)
	}
	// The variables that differ from those the state was bootstrapped with:
	// such a state is rebuilt below, not restarted.
	changed := ""
	if h.bootstrapped() {
		changed = h.changedSince(cfg)
	}
	if h.hasEnvironment() && changed == "" {
		h.log.Info(eventRestart, "instance", h.instance, "reason", herr.Error())
	}

	if err := h.stage(ctx, "packages", h.install); err != nil {
		return nil, err
	}
	if h.bootstrapped() {
		if derr := h.intact(); derr != nil {
			// Restarting cannot succeed: stop what is left and start afresh.
			h.log.Info(eventDamaged, "instance", h.instance, "reason", derr.Error())
			_ = h.teardown(context.WithoutCancel(ctx), true)
		} else if changed != "" {
			// The databases hold the old networks, zones and endpoints: a
			// restart would serve them under the new configuration.
			h.log.Info(eventChanged, "instance", h.instance, "changed", changed)
			_ = h.teardown(context.WithoutCancel(ctx), true)
		}
	}
	env, err = h.bringUp(ctx, cfg)
	if err != nil && ctx.Err() == nil && h.bootstrapped() {
		h.log.Info(eventRestartError, "instance", h.instance, "reason", err.Error())
		h.teardown(context.WithoutCancel(ctx), true)
		env, err = h.bringUp(ctx, cfg)
	}
	if err != nil {
		if terr := h.teardown(context.WithoutCancel(ctx), false); terr != nil && !errors.Is(err, errNotMade) {
			err = errors.Join(err, fmt.Errorf("cleaning up after the failed start: %w", terr))
		}
		return nil, err
	}
	h.progress("up", time.Since(start), nil)
	h.recordTiming("up", time.Since(start))
	return env, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// changedSince names the variables whose values differ from those the
// state was bootstrapped with, and a state version other than this code's
// ("" when nothing differs, or when the state predates that record).
func (h *Host) changedSince(cfg devstack.Config) string {
	rec, err := h.readBootstrap()
	switch {
	case isNotRecorded(err):
		return ""
	case err != nil:
		return "its record " + h.path(fileBootstrapped) + " is unreadable"
	}
	var changed []string
	if rec.StateVersion != stateVersion {
		changed = append(changed, fmt.Sprintf("state version was %d, now %d", rec.StateVersion, stateVersion))
	} else if rec.Virt != h.virt {
		changed = append(changed, fmt.Sprintf("virt was %s, now %s", rec.Virt, h.virt))
	}
	was := rec.Config
	now := cfg.EnvVars()
	for i, v := range was.EnvVars() {
		if v.Value != now[i].Value {
			changed = append(changed, fmt.Sprintf("%s was %s, now %s", v.Name, v.Value, now[i].Value))
		}
	}
	return strings.Join(changed, ", ")
}

// intact checks that a bootstrapped state directory still holds what a
// restart needs: the password, the database's system tables and keystone's
// keys. Without them only a rebuild helps.
func (h *Host) intact() error {
	for _, p := range []string{"secret", "mysql/mysql", "mysql/keystone", "keystone/fernet-keys/0", "keystone/credential-keys/0", "etc/my.cnf",
		"ceph/fsid", "ceph/mon/ceph-" + cephMon + "/store.db", "ceph/osd/ceph-0/block"} {
		if _, err := os.Stat(h.path(p)); err != nil {
			return fmt.Errorf("%s is missing", h.path(p))
		}
	}
	return nil
}

// bringUp starts from nothing running: it removes leftovers, builds the
// network, starts every controller service (bootstrapping the databases the
// first time) and then the worker.
func (h *Host) bringUp(ctx context.Context, cfg devstack.Config) (*devstack.Environment, error) {
	n := h.names()
	h.forgetEnvironment()
	if err := h.stage(ctx, "cleanup", func(ctx context.Context) error {
		// What is left of an earlier run goes; a namespace of the
		// instance's name that it did not make stops Up untouched.
		if err := h.teardown(ctx, false); errors.Is(err, errNotMade) {
			return err
		}
		return os.MkdirAll(h.path("run"), 0o700)
	}); err != nil {
		return nil, err
	}
	if err := h.stage(ctx, "network", func(ctx context.Context) error { return h.createNetwork(ctx, cfg) }); err != nil {
		return nil, err
	}
	if err := h.stage(ctx, "configs", func(context.Context) error { return h.renderConfigs(cfg) }); err != nil {
		return nil, err
	}
	var hostKey ssh.PublicKey
	var userKey []byte
	if err := h.stage(ctx, "ssh", func(ctx context.Context) (err error) {
		if hostKey, userKey, err = h.sshKeys(); err != nil {
			return err
		}
		return h.startSSHD(ctx)
	}); err != nil {
		return nil, err
	}
	fresh := !h.bootstrapped()
	if err := h.stage(ctx, "database", func(ctx context.Context) error { return h.startInfra(ctx, fresh) }); err != nil {
		return nil, err
	}
	if err := h.stage(ctx, "ceph", func(ctx context.Context) error { return h.startCeph(ctx, fresh) }); err != nil {
		return nil, err
	}
	if fresh {
		// keystone starts and registers the catalog as soon as its own
		// schema exists, while the other services' schemas are created.
		if err := h.stage(ctx, "schemas+keystone", func(ctx context.Context) error { return h.syncSchemas(ctx, cfg) }); err != nil {
			return nil, err
		}
	} else if err := h.stage(ctx, "keystone", func(ctx context.Context) error { return h.startKeystone(ctx, cfg, false) }); err != nil {
		return nil, err
	}
	if err := h.stage(ctx, "services", func(ctx context.Context) error {
		// The neutron agents start once neutron-server answers: an agent's
		// first RPC sent before the server's RPC workers declared their
		// queues is dropped and only retried after a minute or more.
		var agents []service
		for _, s := range h.controllerServices() {
			if s.neutronAgent {
				agents = append(agents, s)
				continue
			}
			if err := h.start(s); err != nil {
				return err
			}
		}
		return h.waitController(ctx, cfg, func() error {
			for _, s := range agents {
				if err := h.start(s); err != nil {
					return err
				}
			}
			return nil
		})
	}); err != nil {
		return nil, err
	}
	// The seed is idempotent: a state bootstrapped before it wrote octavia's
	// amphora settings is seeded again.
	if fresh || !fileExists(h.amphoraConf()) {
		if err := h.stage(ctx, "seed", func(ctx context.Context) error { return h.seed(ctx, cfg) }); err != nil {
			return nil, err
		}
	}
	if fresh {
		if err := h.recordBootstrap(cfg); err != nil {
			return nil, err
		}
	}
	if err := h.ensureSSHD(ctx); err != nil {
		return nil, err
	}
	clouds, err := h.cloudsYAML(cfg)
	if err != nil {
		return nil, err
	}
	env := &devstack.Environment{
		Config:     cfg,
		Host:       h.Name(),
		Controller: devstack.Node{Name: "controller", PrivateIP: cfg.ControllerIP, AvailabilityZone: cfg.FailureDomain},
		Worker:     devstack.Node{Name: "worker", PrivateIP: cfg.WorkerIP, AvailabilityZone: cfg.FailureDomainAlt},
		SSH: devstack.SSHEndpoint{
			Address:    net.JoinHostPort(n.publicCtl.String(), "22"),
			User:       "root",
			PrivateKey: userKey,
			HostKey:    strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey))),
		},
		CloudsYAML:  clouds,
		StateDir:    h.stateDir,
		FakeServers: h.virt == VirtFake,
	}
	if err := h.writeEnvironment(env); err != nil {
		return nil, err
	}
	if err := os.WriteFile(h.path(fileCloudsYAML), clouds, 0o600); err != nil {
		return nil, fmt.Errorf("writing clouds.yaml: %w", err)
	}
	if !h.deferWorker {
		if err := h.stage(ctx, "worker", func(ctx context.Context) error { return h.startWorker(cfg) }); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// StartWorker starts the worker's services and its detached registration
// (for an environment brought up WithDeferredWorker, or to restart it).
func (h *Host) StartWorker(ctx context.Context) error {
	unlock, err := h.lock("start-worker")
	if err != nil {
		return err
	}
	defer unlock()
	env, err := h.readEnvironment()
	if isNotRecorded(err) {
		return fmt.Errorf("start worker: no running environment in %s; run Up first", h.stateDir)
	}
	if err != nil {
		return err
	}
	return h.stage(ctx, "worker", func(context.Context) error { return h.startWorker(env.Config) })
}

// startWorker launches the worker's services and the registration step, all
// detached: they keep starting after this process exits.
func (h *Host) startWorker(cfg devstack.Config) error {
	if err := os.WriteFile(h.path("run", "worker-started"), []byte(time.Now().Format(time.RFC3339Nano)), 0o600); err != nil {
		return err
	}
	for _, s := range h.workerServices(cfg) {
		if _, ok := h.pidOf(s.name); ok {
			continue
		}
		if err := h.start(s); err != nil {
			return err
		}
	}
	return nil
}

// WorkerStarted returns when the worker's services were last started.
func (h *Host) WorkerStarted() (time.Time, error) {
	b, err := os.ReadFile(h.path("run", "worker-started"))
	if err != nil {
		return time.Time{}, fmt.Errorf("the worker has not been started: %w", err)
	}
	return time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
}

func (h *Host) cloudsYAML(cfg devstack.Config) ([]byte, error) {
	pw, err := h.password()
	if err != nil {
		return nil, err
	}
	cloud := func(user, project string) clientconfig.Cloud {
		return clientconfig.Cloud{
			AuthInfo: &clientconfig.AuthInfo{
				AuthURL: fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP), Username: user, Password: pw,
				ProjectName: project, UserDomainName: "Default", ProjectDomainName: "Default",
			},
			RegionName: "RegionOne", Interface: "public", IdentityAPIVersion: "3",
		}
	}
	c := clientconfig.Clouds{Clouds: map[string]clientconfig.Cloud{
		cfg.Cloud:      cloud("demo", "demo"),
		cfg.CloudAdmin: cloud("admin", "admin"),
	}}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("rendering clouds.yaml: %w", err)
	}
	return b, nil
}

// Down stops every process the environment started, removes its network
// namespaces (also the qrouter-/qdhcp- ones its neutron made, found by the
// network and router ids in its database), links and data; only logs and
// timings stay in the state directory. Down of a dead environment (processes
// gone, namespaces left) removes what is left; Down with nothing there does
// nothing and succeeds. Namespaces are removed only when they hold this
// instance's links: one of the same name that something else made is left
// alone and named in the error (Up refuses to start beside it likewise).
func (h *Host) Down(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("local host: must run as root to remove network namespaces; run with sudo")
	}
	if _, err := os.Stat(h.stateDir); os.IsNotExist(err) {
		return h.deleteNetwork(ctx)
	}
	unlock, err := h.lock("down")
	if err != nil {
		return err
	}
	defer unlock()
	return h.stage(ctx, "down", func(ctx context.Context) error {
		err := h.teardown(ctx, true)
		if n := h.leftovers(ctx); len(n) > 0 {
			err = errors.Join(err, fmt.Errorf("still present after down: %s", strings.Join(n, ", ")))
		}
		if err == nil {
			_ = os.Remove(h.path(fileNeutronNamespaces))
		}
		return err
	})
}

// teardown stops every process and removes the network; with wipe it also
// deletes the data (databases, keys, configs) so the next Up starts afresh.
func (h *Host) teardown(ctx context.Context, wipe bool) error {
	h.rememberNeutronNamespaces(ctx, wipe)
	err := h.stopAll(ctx, 15*time.Second)
	err = errors.Join(err, h.stopVMsAndWait(ctx))
	err = errors.Join(err, h.deleteNetwork(ctx))
	h.forgetEnvironment()
	if wipe {
		entries, _ := os.ReadDir(h.stateDir)
		for _, e := range entries {
			if slices.Contains(keptByWipe, e.Name()) {
				continue
			}
			_ = os.RemoveAll(filepath.Join(h.stateDir, e.Name()))
		}
	}
	return err
}

// leftovers lists what of this instance still exists: namespaces, the root
// link, processes.
func (h *Host) leftovers(ctx context.Context) []string {
	n := h.names()
	var out []string
	for _, ns := range append([]string{n.controller, n.worker}, h.neutronNamespaces(ctx)...) {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			out = append(out, "namespace "+ns)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + n.rootLink); err == nil {
		out = append(out, "link "+n.rootLink)
	}
	for _, name := range h.recorded() {
		if pid, ok := h.pidOf(name); ok {
			out = append(out, fmt.Sprintf("process %s (pid %d)", name, pid))
		}
	}
	return out
}
