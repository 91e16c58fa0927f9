//go:build linux

package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/stackgate/stackgate/devstack"
)

// DefaultInstance is the name of the default environment, whose network
// namespaces are called exactly "controller" and "worker".
const DefaultInstance = "default"

// Option configures a Host.
type Option func(*Host)

// WithStateDir sets the directory for configuration, data, logs, pid files
// and the lock (default: os.UserCacheDir()/stackgate/local, or local-<instance>
// for an instance other than the default).
func WithStateDir(dir string) Option { return func(h *Host) { h.stateDir = dir } }

// WithLogger sends the host's progress (one event per stage, with its
// duration, and one per repair) to l: the one sink of a Host's progress.
func WithLogger(l logr.Logger) Option { return func(h *Host) { h.log = l } }

// WithOutput is WithLogger with a logger that prints each progress event as
// one line on w ("local[default]: packages   1.2s"), as the command line
// shows them. It replaces a logger given before: a Host has one sink.
func WithOutput(w io.Writer) Option {
	return WithLogger(logr.New(&lineSink{mu: &sync.Mutex{}, w: w}))
}

// WithInstance names an independent environment that runs beside the default
// one: its namespaces are "<name>-controller" and "<name>-worker" and its
// public address is a /30 of its own in 198.19.0.0/16. Names are 1-8 lower
// case letters, digits or dashes.
func WithInstance(name string) Option { return func(h *Host) { h.instance = name } }

// WithDeferredWorker makes Up leave the worker stopped; StartWorker starts it.
func WithDeferredWorker() Option { return func(h *Host) { h.deferWorker = true } }

// WithWorkerTimeout bounds the worker's registration (default 5 minutes).
func WithWorkerTimeout(d time.Duration) Option { return func(h *Host) { h.workerTimeout = d } }

// Host runs an environment in network namespaces of this machine. It
// implements devstack.Host.
type Host struct {
	instance      string
	stateDir      string
	log           logr.Logger
	deferWorker   bool
	workerTimeout time.Duration
	virt          string // VirtQEMU or VirtFake
}

var _ devstack.Host = (*Host)(nil)

var instanceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,7}$`)

// New returns a host for the default instance unless WithInstance says
// otherwise. An invalid option is refused here, with the option's name and
// the rule, so every method of a Host it returns can work.
func New(opts ...Option) (*Host, error) {
	h := &Host{instance: DefaultInstance, log: logr.Discard(), workerTimeout: 5 * time.Minute, virt: os.Getenv(EnvVirt)}
	if h.virt == "" {
		h.virt = VirtQEMU
	}
	for _, o := range opts {
		o(h)
	}
	if err := validVirt(h.virt); err != nil {
		return nil, err
	}
	if !instanceName.MatchString(h.instance) {
		return nil, fmt.Errorf("local host: instance name %q: use 1-8 lower case letters, digits or dashes, starting with a letter or digit", h.instance)
	}
	if h.stateDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = filepath.Join(os.TempDir(), "cache")
		}
		dir := "local"
		if h.instance != DefaultInstance {
			dir = "local-" + h.instance
		}
		h.stateDir = filepath.Join(base, "stackgate", dir)
	}
	if abs, err := filepath.Abs(h.stateDir); err == nil {
		h.stateDir = abs
	}
	return h, nil
}

// Name returns "local".
func (h *Host) Name() string { return "local" }

// Instance returns the instance name.
func (h *Host) Instance() string { return h.instance }

// StateDir returns the state directory.
func (h *Host) StateDir() string { return h.stateDir }

// names are the network objects of one instance.
type names struct {
	controller, worker string       // network namespaces
	rootLink, ctlLink  string       // public veth pair: root side, controller side
	bridge             string       // private bridge, inside the controller namespace
	workerLink, brPort string       // private veth pair: worker side, bridge port
	extCtl, extGw      string       // controller: physnet "public" interface and its peer holding the gateway
	extWorker, extWkPr string       // worker: physnet "public" interface and its peer
	public             netip.Prefix // public /30
	publicCtl          netip.Addr   // controller side of the /30 (sshd)
	publicRoot         netip.Addr   // root namespace side
}

// PublicRange holds every local instance's public /30: the controller's
// sshd and the root namespace's end of the link to it.
var PublicRange = netip.MustParsePrefix("198.19.0.0/16")

// outsidePublicRange refuses networks that overlap PublicRange: their
// routes would take the addresses of the controller's sshd.
func outsidePublicRange(cfg devstack.Config) error {
	var errs []error
	for _, n := range []struct {
		name string
		p    netip.Prefix
	}{{"PRIVATE_NETWORK_CIDR", cfg.PrivateNetworkCIDR}, {"FLOATING_RANGE", cfg.FloatingRange}} {
		if n.p.Overlaps(PublicRange) {
			errs = append(errs, fmt.Errorf("%s %s overlaps %s, where the local host puts the controller's public address; choose another network", n.name, n.p, PublicRange))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid devstack configuration for the local host: %w", err)
	}
	return nil
}

func (h *Host) names() names {
	n := names{controller: "controller", worker: "worker", bridge: "br-private"}
	third, fourth := byte(0), byte(0)
	suffix := "0"
	if h.instance != DefaultInstance {
		n.controller, n.worker = h.instance+"-controller", h.instance+"-worker"
		f := fnv.New32a()
		_, _ = f.Write([]byte(h.instance))
		v := f.Sum32()
		third = byte(1 + v%255)
		fourth = byte((v >> 8) % 64 * 4)
		suffix = h.instance
	}
	n.rootLink, n.ctlLink = "sgp-"+suffix, "sgc-"+suffix
	n.workerLink, n.brPort = "sgw-"+suffix, "sgb-"+suffix
	n.extCtl, n.extGw = "sge-"+suffix, "sgg-"+suffix
	n.extWorker, n.extWkPr = "sgx-"+suffix, "sgy-"+suffix
	n.public = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, third, fourth}), 30)
	n.publicCtl = netip.AddrFrom4([4]byte{198, 19, third, fourth + 1})
	n.publicRoot = netip.AddrFrom4([4]byte{198, 19, third, fourth + 2})
	return n
}

func (h *Host) path(p ...string) string { return filepath.Join(append([]string{h.stateDir}, p...)...) }

// progress reports a finished stage.
func (h *Host) progress(stage string, d time.Duration, err error) {
	event := eventStageDone
	if err != nil {
		event = eventStageFailed
	}
	h.log.Info(event, "instance", h.instance, "stage", stage, "duration", d.Round(10*time.Millisecond).String())
}

// stage runs f as a named stage, prints its duration and records it.
func (h *Host) stage(ctx context.Context, name string, f func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	start := time.Now()
	err := f(ctx)
	d := time.Since(start)
	h.progress(name, d, err)
	if err == nil {
		h.recordTiming(name, d)
	}
	return err
}

// Timings are the durations of the last run of each stage, by name, kept in
// the state directory (timings.json).
type Timings map[string]time.Duration

func (h *Host) recordTiming(name string, d time.Duration) {
	t := h.Timings()
	t[name] = d
	b, _ := json.Marshal(t)
	_ = os.WriteFile(h.path(fileTimings), b, 0o600)
}

// Timings returns the recorded stage durations.
func (h *Host) Timings() Timings {
	t := Timings{}
	if b, err := os.ReadFile(h.path(fileTimings)); err == nil {
		_ = json.Unmarshal(b, &t)
	}
	return t
}

func (h *Host) environment(cfg devstack.Config) (*devstack.Environment, error) {
	env, err := h.readEnvironment()
	if err != nil {
		return nil, err
	}
	if env.Config != cfg {
		return nil, errors.New("the running environment was built from another configuration")
	}
	return env, nil
}
