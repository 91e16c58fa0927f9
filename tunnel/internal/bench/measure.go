package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/net/proxy"

	"github.com/stackgate/stackgate/tunnel"
)

type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// path is one way of reaching the target; start returns its dialer and a
// stop function.
type path struct {
	name  string
	start func(ctx context.Context, s setup) (dialFunc, func() error, error)
}

type result struct {
	down, up         float64 // MB/s
	p50, p99         time.Duration
	parallel         time.Duration
	err              error
	skipped, partial bool
}

var paths = []path{
	{"direct", startDirect},
	{"openssh", startOpenSSH},
	{"sshuttle", startSshuttle},
	{"tunnel", startTunnel},
	{"socks5", startSOCKS5},
}

var labels = map[string]string{
	"direct":   "direct routing",
	"openssh":  "OpenSSH ssh -L (aes128-gcm)",
	"sshuttle": "sshuttle",
	"tunnel":   "tunnel, in-process",
	"socks5":   "tunnel, SOCKS5 port",
}

// measure runs inside the client namespace.
func measure(setupFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := os.ReadFile(setupFile)
	if err != nil {
		return err
	}
	var s setup
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	results := map[string]*result{}
	for _, p := range paths {
		if slices.Contains(s.Skip, p.name) {
			results[p.name] = &result{skipped: true}
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", labels[p.name])
		results[p.name] = measurePath(ctx, s, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	printTable(os.Stdout, s, results)
	return nil
}

func measurePath(ctx context.Context, s setup, p path) *result {
	r := &result{}
	if p.name == "sshuttle" && s.SshuttleSize > 0 {
		s.Size = s.SshuttleSize
	}
	dial, stop, err := p.start(ctx, s)
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if err := stop(); err != nil {
			r.err = errors.Join(r.err, err)
		}
	}()
	// Check the path really goes through the controller (the target sees
	// the controller's address), and wait for sshuttle's firewall rules,
	// which it installs after saying it is connected.
	if err := waitRoute(ctx, dial, s, p.name == "direct"); err != nil {
		r.err = err
		return r
	}
	// Every measurement is bounded; a stuck path is reported, not waited for.
	step := func(what string, timeout time.Duration, f func(context.Context) error) {
		if r.err != nil {
			return
		}
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := f(c); err != nil {
			r.err = fmt.Errorf("%s: %w", what, err)
		}
	}
	rounds := s.Rounds
	if p.name == "sshuttle" {
		rounds = 1 // tens of MB/s: one transfer each way is minutes already
	}
	var downs, ups []float64
	var bursts []time.Duration
	for range rounds {
		var v float64
		step("download", 10*time.Minute, func(c context.Context) (err error) { v, err = download(c, dial, s); downs = append(downs, v); return })
		step("upload", 10*time.Minute, func(c context.Context) (err error) { v, err = upload(c, dial, s); ups = append(ups, v); return })
		step("parallel", 5*time.Minute, func(c context.Context) (err error) {
			d, err := burst(c, dial, s)
			bursts = append(bursts, d)
			return err
		})
	}
	step("time to first byte", 5*time.Minute, func(c context.Context) (err error) { r.p50, r.p99, err = ttfb(c, dial, s); return })
	if r.err == nil {
		r.down, r.up, r.parallel = median(downs), median(ups), median(bursts)
	}
	return r
}

func median[T float64 | time.Duration](v []T) T {
	slices.Sort(v)
	return v[len(v)/2]
}

// --- the paths ---

func startDirect(_ context.Context, _ setup) (dialFunc, func() error, error) {
	var d net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		func() error { return nil }, nil
}

func sshArgs(s setup) []string {
	return []string{
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.KnownHostsFile, "-i", s.UserKeyFile,
		"-c", "aes128-gcm@openssh.com", "-o", "ServerAliveInterval=5",
	}
}

func startOpenSSH(ctx context.Context, s setup) (dialFunc, func() error, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	local := l.Addr().String()
	l.Close()
	host, port, _ := net.SplitHostPort(s.ControllerSSH)
	args := append(sshArgs(s), "-N", "-o", "ExitOnForwardFailure=yes", "-p", port,
		"-L", local+":"+s.Target, "root@"+host)
	_, stop, err := startProcess("ssh", args, "")
	if err != nil {
		return nil, nil, err
	}
	if err := waitListening(ctx, local, 15*time.Second); err != nil {
		return nil, nil, errors.Join(err, stop())
	}
	var d net.Dialer
	return func(ctx context.Context, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", local) }, stop, nil
}

func startSshuttle(ctx context.Context, s setup) (dialFunc, func() error, error) {
	host, port, _ := net.SplitHostPort(s.ControllerSSH)
	sshCmd := "ssh " + strings.Join(append(sshArgs(s), "-p", port), " ")
	args := []string{"-r", "root@" + host, "--ssh-cmd", sshCmd, "10.0.3.0/24"}
	_, stop, err := startProcess("sshuttle", args, "Connected")
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }, stop, nil
}

func openTunnel(ctx context.Context, s setup) (*tunnel.Tunnel, error) {
	return tunnel.Open(ctx, tunnel.Config{
		Address:        s.ControllerSSH,
		User:           "root",
		PrivateKeyFile: s.UserKeyFile,
		HostKey:        []byte(s.HostKeyLine),
		Routes:         []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24"), netip.MustParsePrefix("172.24.4.0/24")},
	})
}

func startTunnel(ctx context.Context, s setup) (dialFunc, func() error, error) {
	t, err := openTunnel(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, addr string) (net.Conn, error) { return t.DialContext(ctx, "tcp", addr) }, t.Close, nil
}

func startSOCKS5(ctx context.Context, s setup) (dialFunc, func() error, error) {
	t, err := openTunnel(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, errors.Join(err, t.Close())
	}
	served := make(chan error, 1)
	go func() { served <- t.Serve(l) }()
	d, err := proxy.SOCKS5("tcp", l.Addr().String(), nil, proxy.Direct)
	if err != nil {
		return nil, nil, errors.Join(err, t.Close())
	}
	cd := d.(proxy.ContextDialer)
	stop := func() error {
		err := t.Close()
		if serr := <-served; !errors.Is(serr, tunnel.ErrClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return func(ctx context.Context, addr string) (net.Conn, error) { return cd.DialContext(ctx, "tcp", addr) }, stop, nil
}

// startProcess starts a client-side helper and, when marker is set, waits
// for it in the helper's output. stop interrupts it by PID and waits.
func startProcess(name string, args []string, marker string) (*exec.Cmd, func() error, error) {
	cmd := exec.Command(name, args...)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", name, err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var mu sync.Mutex
	var out bytes.Buffer
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if marker != "" && strings.Contains(sc.Text(), marker) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.TrimSpace(out.String())
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop within 10s of SIGTERM; killed", name)
		}
	}
	if marker == "" {
		return cmd, stop, nil
	}
	select {
	case <-seen:
		return cmd, stop, nil
	case err := <-exited:
		stopped = true
		return nil, nil, fmt.Errorf("%s exited (%v) before printing %q: %s", name, err, marker, output())
	case <-time.After(30 * time.Second):
		return nil, nil, errors.Join(fmt.Errorf("%s did not print %q within 30s; output: %s", name, marker, output()), stop())
	}
}

func waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 10 * time.Millisecond
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	return fmt.Errorf("nothing listened on %s within %s; last error: %v", addr, timeout, last)
}

// waitRoute polls GET / until the target reports the expected client
// address: the client namespace's own for direct routing, the controller's
// (10.0.3.1) for every tunnelled path.
func waitRoute(ctx context.Context, dial dialFunc, s setup, direct bool) error {
	deadline := time.Now().Add(30 * time.Second)
	backoff := 20 * time.Millisecond
	var last string
	for time.Now().Before(deadline) {
		body, err := get(ctx, dial, s)
		if err == nil && strings.Contains(body, " to 10.0.3.1:") != direct {
			return nil
		}
		last = fmt.Sprintf("%q (error %v)", body, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	return fmt.Errorf("the target did not see the expected client address (direct=%v) within 30s; last answer %s", direct, last)
}

func get(ctx context.Context, dial dialFunc, s setup) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := dial(ctx, s.Target)
	if err != nil {
		return "", err
	}
	defer c.Close()
	defer closeOnDone(ctx, c)()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// --- the measurements ---

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func closeOnDone(ctx context.Context, c net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { c.Close() })
}

func download(ctx context.Context, dial dialFunc, s setup) (float64, error) {
	start := time.Now()
	c, err := dial(ctx, s.Target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer closeOnDone(ctx, c)()
	if _, err := fmt.Fprintf(c, "GET /bytes?n=%d HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", s.Size); err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 256<<10))
	if err != nil {
		return 0, err
	}
	if n < s.Size {
		return 0, fmt.Errorf("read %d bytes, want at least %d", n, s.Size)
	}
	return float64(s.Size) / time.Since(start).Seconds() / 1e6, nil
}

func upload(ctx context.Context, dial dialFunc, s setup) (float64, error) {
	start := time.Now()
	c, err := dial(ctx, s.Target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer closeOnDone(ctx, c)()
	if _, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", s.Size); err != nil {
		return 0, err
	}
	if _, err := io.CopyBuffer(struct{ io.Writer }{c}, io.LimitReader(zeros{}, s.Size), make([]byte, 256<<10)); err != nil {
		return 0, err
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	if !bytes.Contains(resp, []byte("\r\n\r\n"+strconv.FormatInt(s.Size, 10))) {
		return 0, fmt.Errorf("unexpected answer to the upload: %q", resp)
	}
	return float64(s.Size) / time.Since(start).Seconds() / 1e6, nil
}

// firstByte opens a connection, asks for a small page and returns the
// time until its first byte.
func firstByte(ctx context.Context, dial dialFunc, s setup) (time.Duration, error) {
	start := time.Now()
	c, err := dial(ctx, s.Target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer closeOnDone(ctx, c)()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(c, one); err != nil {
		return 0, err
	}
	d := time.Since(start)
	_, err = io.Copy(io.Discard, c)
	return d, err
}

func ttfb(ctx context.Context, dial dialFunc, s setup) (p50, p99 time.Duration, err error) {
	times := make([]time.Duration, 0, s.Conns)
	for range s.Conns {
		d, err := firstByte(ctx, dial, s)
		if err != nil {
			return 0, 0, fmt.Errorf("connection %d: %w", len(times)+1, err)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	return times[len(times)*50/100], times[len(times)*99/100], nil
}

func burst(ctx context.Context, dial dialFunc, s setup) (time.Duration, error) {
	start := time.Now()
	errs := make(chan error, s.Parallel)
	for range s.Parallel {
		go func() {
			_, err := firstByte(ctx, dial, s)
			errs <- err
		}()
	}
	var all []error
	for range s.Parallel {
		all = append(all, <-errs)
	}
	return time.Since(start), errors.Join(all...)
}

// --- the table ---

func printTable(w io.Writer, s setup, results map[string]*result) {
	ref := results["openssh"]
	refOK := ref != nil && !ref.skipped && ref.err == nil
	ratio := func(v, r float64) string {
		if !refOK || r == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.2f×)", v/r)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(w, "\nTunnel benchmark: %d MiB each way (sshuttle: %d MiB), %d new connections, %d in parallel; median of %d rounds (sshuttle: 1); ratio to OpenSSH in brackets\n\n",
		s.Size>>20, s.SshuttleSize>>20, s.Conns, s.Parallel, s.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| path\t| download MB/s\t| upload MB/s\t| TTFB p50 ms\t| TTFB p99 ms\t| "+strconv.Itoa(s.Parallel)+" parallel ms\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, p := range paths {
		r := results[p.name]
		switch {
		case r.skipped:
			fmt.Fprintf(tw, "| %s\t| skipped\t|\t|\t|\t|\t|\n", labels[p.name])
			continue
		case r.err != nil:
			fmt.Fprintf(tw, "| %s\t| failed: %v\t|\t|\t|\t|\t|\n", labels[p.name], r.err)
			continue
		}
		var rd, ru, r50, r99, rp string
		if refOK {
			rd, ru = ratio(r.down, ref.down), ratio(r.up, ref.up)
			r50, r99 = ratio(ms(r.p50), ms(ref.p50)), ratio(ms(r.p99), ms(ref.p99))
			rp = ratio(ms(r.parallel), ms(ref.parallel))
		}
		fmt.Fprintf(tw, "| %s\t| %.0f%s\t| %.0f%s\t| %.2f%s\t| %.2f%s\t| %.1f%s\t|\n", labels[p.name],
			r.down, rd, r.up, ru, ms(r.p50), r50, ms(r.p99), r99, ms(r.parallel), rp)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nMB/s: higher is better; times: lower is better. MB = 10^6 bytes.")
}
