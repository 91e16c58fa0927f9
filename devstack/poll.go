package devstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
)

// Polling of a wait whose Intervals give no polling: the first retry after
// MinPollInterval, each next one 1.5 times later, never more than
// MaxPollInterval apart.
const (
	MinPollInterval = 100 * time.Millisecond
	MaxPollInterval = time.Second
	// DefaultWaitTimeout bounds a wait that was given no timeout of its own.
	DefaultWaitTimeout = 5 * time.Minute
)

// Intervals bound a wait as an e2e configuration's [timeout, polling] bound
// Gomega's Eventually in the Cluster API test framework: the check runs at
// once, then every Polling, until it holds or Timeout has passed.
type Intervals struct {
	// Timeout bounds the wait (default DefaultWaitTimeout); the context's
	// deadline still applies when it is earlier.
	Timeout time.Duration
	// Polling is the pause between two checks. Zero means a pause growing
	// from MinPollInterval to MaxPollInterval, for waits nobody configures.
	Polling time.Duration
}

// WaitTimeoutError is a wait that gave up: what it waited for, for how long,
// and what it saw on its last look.
type WaitTimeoutError struct {
	// What is the condition that was awaited.
	What string
	// Waited is how long it was awaited.
	Waited time.Duration
	// Limit is the wait's own timeout. A wait that ended before it was ended
	// by its caller's context (an interrupt, a shorter outer bound).
	Limit time.Duration
	// LastSeen describes the last observation. When the checks after it
	// failed, it starts with the last error and ends with that observation.
	LastSeen string
	// Err is the context's error (deadline exceeded or canceled).
	Err error
}

// Error says whether the wait timed out or was canceled, after how long,
// what it waited for, whose bound ended it and what it saw last.
func (e *WaitTimeoutError) Error() string {
	verb, why := "timed out", fmt.Sprintf("its limit is %s", e.Limit)
	if errors.Is(e.Err, context.Canceled) {
		verb = "canceled"
	}
	if e.Waited < e.Limit || errors.Is(e.Err, context.Canceled) {
		why = "the caller's context ended first"
	}
	return fmt.Sprintf("%s after %s waiting for %s (%s); last seen: %s", verb, e.Waited.Round(time.Millisecond), e.What, why, e.LastSeen)
}

// Unwrap returns the context's error.
func (e *WaitTimeoutError) Unwrap() error { return e.Err }

// Permanent marks an error of a check that polling cannot cure (a server in
// ERROR, a service that died): Poll returns it at once.
func Permanent(err error) error { return permanent{err} }

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

func isPermanent(err error) bool {
	var cy *CloudsYAMLError
	var nf *CloudNotFoundError
	var p permanent
	return errors.Is(err, ErrUnauthorized) || errors.As(err, &cy) || errors.As(err, &nf) || errors.As(err, &p)
}

// Poll is how every wait of stackgate is bounded. It runs check at once and
// then after each pause of iv.Polling until check reports done, iv.Timeout
// has passed or ctx ends. check says what it saw; its errors are retried,
// except those marked Permanent (and refused credentials or a broken
// clouds.yaml), which Poll returns wrapped with what it waited for. On
// timeout or cancellation it returns a *WaitTimeoutError naming what it saw
// last. Each attempt is logged to log at verbosity 2, the result at 1.
func Poll(ctx context.Context, log logr.Logger, what string, iv Intervals, check func(ctx context.Context) (seen string, done bool, err error)) error {
	timeout := iv.Timeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	// Taken before the deadline is set, so that a wait its own timeout ends
	// reports at least that timeout.
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log = log.WithValues("wait", what)
	pause := iv.Polling
	if pause <= 0 {
		pause = MinPollInterval
	}
	var seen lastSeen
	timer := time.NewTimer(pause)
	timer.Stop()
	for attempt := 1; ; attempt++ {
		s, ok, err := check(ctx)
		switch {
		case err != nil && isPermanent(err):
			return fmt.Errorf("waiting for %s: %w", what, err)
		case err != nil:
			switch {
			case ctx.Err() == nil:
				seen.err = err.Error()
			case attempt == 1: // the first check did not finish in time: say what it was doing
				seen.unfinished = err.Error()
			}
		case ok:
			log.V(1).Info("ready", "after", time.Since(start).Round(time.Millisecond).String(), "attempts", attempt)
			return nil
		default:
			seen = lastSeen{observed: s}
		}
		log.V(2).Info("not yet", "seen", seen.String())
		timer.Reset(pause)
		select {
		case <-ctx.Done():
			return &WaitTimeoutError{What: what, Waited: time.Since(start), Limit: timeout, LastSeen: seen.String(), Err: ctx.Err()}
		case <-timer.C:
		}
		if iv.Polling <= 0 {
			pause = min(pause*3/2, MaxPollInterval)
		}
	}
}

// lastSeen is what a wait saw: its last observation, and the error of the
// checks that failed since (a restarting API, a dropped connection), so that
// a timeout names both.
type lastSeen struct {
	observed   string
	err        string
	unfinished string // the first check's error when the deadline cut it short
}

func (l lastSeen) String() string {
	switch {
	case l.err != "" && l.observed != "":
		return "error: " + l.err + " (the last check that answered saw: " + l.observed + ")"
	case l.err != "":
		return "error: " + l.err
	case l.observed != "":
		return l.observed
	case l.unfinished != "":
		return "the first check did not finish in time: " + l.unfinished
	}
	return "nothing yet (no check completed)"
}
