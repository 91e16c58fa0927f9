//go:build linux

package local

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/stackgate/stackgate/devstack"
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

// poll waits, as devstack.Poll does, until check reports done, the timeout
// passes or ctx ends; check returns what it saw, which the error repeats on
// give-up. Between attempts, alive (if set) fails fast when a service died.
func poll(ctx context.Context, what string, timeout time.Duration, alive func() error, check func(context.Context) (bool, string)) error {
	return devstack.Poll(ctx, logr.Discard(), what, devstack.Intervals{Timeout: timeout}, func(ctx context.Context) (string, bool, error) {
		ok, seen := check(ctx)
		if ok || alive == nil {
			return seen, ok, nil
		}
		if err := alive(); err != nil {
			return seen, false, devstack.Permanent(err)
		}
		return seen, false, nil
	})
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
