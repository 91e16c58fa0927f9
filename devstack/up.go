package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
)

// Option changes how Up brings an environment up.
type Option func(*upOptions)

type upOptions struct {
	log        logr.Logger
	strategies []Strategy
	setWait    bool
	attach     []byte
	stateFile  string
	downOnFail bool
	polling    time.Duration
}

// WithLogger sends Up's progress, and the events of the returned
// environment's tunnels and waits, to l (default: nowhere). It is how a
// logger reaches this package: to log for an environment serialised by
// Environment.Marshal, attach to it with Up and WithAttach.
func WithLogger(l logr.Logger) Option { return func(o *upOptions) { o.log = l } }

// WithWait replaces the strategies Up waits for once the host is up
// (default: DefaultStrategies). No strategies means no wait.
func WithWait(strategies ...Strategy) Option {
	return func(o *upOptions) { o.strategies, o.setWait = strategies, true }
}

// WithPolling makes the strategies Up waits for check every d, as the
// polling of an e2e configuration's interval asks; a Condition whose
// intervals set a polling of their own keeps it.
func WithPolling(d time.Duration) Option { return func(o *upOptions) { o.polling = d } }

// withPolling gives s, and each strategy it combines, the polling d unless
// it has one.
func withPolling(s Strategy, d time.Duration) Strategy {
	switch x := s.(type) {
	case *Condition:
		if x.intervals.Polling <= 0 {
			iv := x.intervals
			iv.Polling = d
			return x.WithIntervals(iv)
		}
	case all:
		out := make(all, len(x))
		for i, s := range x {
			out[i] = withPolling(s, d)
		}
		return out
	}
	return s
}

// WithAttach attaches to the environment serialised by Environment.Marshal
// instead of asking the host: the host's Up is not called.
func WithAttach(serialised []byte) Option { return func(o *upOptions) { o.attach = serialised } }

// WithStateFile reuses the environment serialised in path when it exists and
// its configuration matches, and writes the environment there (mode 0600)
// after the host brought it up, so other processes can attach.
func WithStateFile(path string) Option { return func(o *upOptions) { o.stateFile = path } }

// WithDownOnFailure makes Up call host.Down when the environment came up but
// did not become ready (by default it is left for inspection and reuse).
func WithDownOnFailure() Option { return func(o *upOptions) { o.downOnFail = true } }

// Up brings the environment up on host (or attaches to a running one, see
// WithAttach and WithStateFile), then waits until it is ready.
func Up(ctx context.Context, cfg Config, host Host, opts ...Option) (*Environment, error) {
	o := upOptions{log: logr.Discard()}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !o.setWait {
		o.strategies = DefaultStrategies(cfg)
	}
	if o.polling > 0 {
		polled := make([]Strategy, len(o.strategies))
		for i, s := range o.strategies {
			polled[i] = withPolling(s, o.polling)
		}
		o.strategies = polled
	}
	env, attached, err := o.environment(ctx, cfg, host)
	if err != nil {
		return nil, err
	}
	env.setLogger(o.log)
	if err := env.Wait(ctx, o.strategies...); err != nil {
		_ = env.Close()
		err = fmt.Errorf("environment %q on host %s is not ready: %w", cfg.Name, env.Host, err)
		if o.downOnFail && !attached && host != nil {
			if derr := host.Down(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, fmt.Errorf("tearing it down: %w", derr))
			}
		}
		return nil, err
	}
	o.log.Info("environment ready", "name", cfg.Name, "host", env.Host, "attached", attached)
	return env, nil
}

func (o *upOptions) environment(ctx context.Context, cfg Config, host Host) (*Environment, bool, error) {
	data := o.attach
	if data == nil && o.stateFile != "" {
		b, err := os.ReadFile(o.stateFile)
		switch {
		case err == nil:
			data = b
		case !errors.Is(err, os.ErrNotExist):
			return nil, false, fmt.Errorf("reading state file %s: %w", o.stateFile, err)
		}
	}
	if data != nil {
		env, err := UnmarshalEnvironment(data)
		if err != nil {
			if o.attach == nil {
				return nil, false, fmt.Errorf("state file %s: %w; delete it to bring a new environment up", o.stateFile, err)
			}
			return nil, false, err
		}
		if env.Config == cfg {
			o.log.Info("attaching to a running environment", "name", cfg.Name, "host", env.Host)
			return env, true, nil
		}
		if o.attach != nil {
			return nil, false, fmt.Errorf("the environment to attach to was built from another configuration (%+v, not %+v)", env.Config, cfg)
		}
		o.log.Info("state file describes another configuration; bringing up a new environment", "file", o.stateFile)
	}
	if host == nil {
		return nil, false, errors.New("no host to bring the environment up on: pass one (local.New(), an *Existing, ...) or WithAttach")
	}
	o.log.Info("bringing the environment up", "name", cfg.Name, "host", host.Name())
	env, err := host.Up(ctx, cfg)
	if err != nil {
		return nil, false, fmt.Errorf("host %s: %w", host.Name(), err)
	}
	if o.stateFile != "" {
		b, err := env.Marshal()
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(o.stateFile), 0o700); err != nil {
			return nil, false, fmt.Errorf("writing state file: %w", err)
		}
		if err := os.WriteFile(o.stateFile, b, 0o600); err != nil {
			return nil, false, fmt.Errorf("writing state file: %w", err)
		}
	}
	return env, false, nil
}
