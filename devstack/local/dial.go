package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// nsDialer returns a DialContext that opens its connections inside the
// network namespace ns; the setup code uses it to reach the private
// addresses without a tunnel.
func nsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// The thread is left locked: it changed namespace, so the runtime
			// ends it when this goroutine returns instead of reusing it.
			runtime.LockOSThread()
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				ch <- result{nil, fmt.Errorf("opening network namespace %s: %w", ns, err)}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("entering network namespace %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// nsHTTPClient is an HTTP client whose connections start inside ns.
func nsHTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{DialContext: nsDialer(ns), DisableKeepAlives: true},
	}
}

// poll calls check with backoff until it reports done, the timeout passes or
// ctx ends; check returns what it saw, which the error repeats on give-up.
// Between attempts, alive (if set) fails fast when a service died.
func poll(ctx context.Context, what string, timeout time.Duration, alive func() error, check func(context.Context) (bool, string)) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 100 * time.Millisecond
	last := "nothing yet"
	for {
		ok, seen := check(ctx)
		if seen != "" {
			last = seen
		}
		if ok {
			return nil
		}
		if alive != nil {
			if err := alive(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			why := fmt.Sprintf("its limit is %s", timeout)
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) || time.Since(start) < timeout {
				why = "the caller's context ended first" // Ctrl-C, or a shorter outer bound
			}
			return fmt.Errorf("gave up waiting for %s after %s, %s (%w); last seen: %s", what, time.Since(start).Round(time.Millisecond), why, context.Cause(ctx), last)
		case <-t.C:
		}
		delay = min(delay*3/2, time.Second)
	}
}

// httpStatus GETs url and returns its status code, or 0 and the error.
func httpStatus(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
