//go:build linux

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
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
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
	down, up   float64 // MB/s
	p50, p99   time.Duration
	parallel   time.Duration
	err        error
	skipped    bool
	downs, ups []float64       // every round, in order
	bursts     []time.Duration // every burst, sorted
	conns      int             // new connections behind p50/p99
	// CPU seconds per GiB: the client side (this process and its helpers)
	// and the controller's sshd, downloading and uploading.
	cpuDown, cpuUp, sshdDown, sshdUp float64
	// CPU time per burst (median): the client side and sshd.
	burstCPU, burstSSHD time.Duration
}

var paths = []path{
	{"direct", startDirect},
	{"openssh", startOpenSSH},
	{"openssh-socks", startOpenSSHSOCKS},
	{"sshuttle", startSshuttle},
	{"tunnel", startTunnel},
	{"socks5", startSOCKS5},
	{"connect", startCONNECT},
}

var labels = map[string]string{
	"direct":        "direct routing",
	"openssh":       "OpenSSH ssh -L (aes128-gcm)",
	"openssh-socks": "OpenSSH ssh -D, SOCKS5 port",
	"sshuttle":      "sshuttle",
	"tunnel":        "tunnel, in-process",
	"socks5":        "tunnel, SOCKS5 port",
	"connect":       "tunnel, HTTP CONNECT",
}

// measure runs inside the client namespace. sshuttle goes first and alone
// (its firewall rules would capture the direct path's traffic); then every
// other path is started and they take turns round by round, in a rotating
// order, so a burst of load on this shared machine hits all of them alike.
// Each figure is the median over the rounds.
func measure(setupFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := os.ReadFile(setupFile)
	if err != nil {
		return fmt.Errorf("reading the setup file: %w", err)
	}
	var s setup
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("parsing the setup file %s: %w", setupFile, err)
	}
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if s.BlockProfile != "" {
		runtime.SetBlockProfileRate(10000)
		defer writeProfile("block", s.BlockProfile)
	}
	if s.MemProfile != "" {
		defer writeProfile("allocs", s.MemProfile)
	}
	loads := []string{"start " + loadAverage()}
	results := map[string]*result{}
	var running []*pathRun
	defer func() {
		for _, r := range running {
			r.stopPath()
		}
	}()
	for _, p := range paths {
		if slices.Contains(s.Skip, p.name) {
			results[p.name] = &result{skipped: true}
			continue
		}
		results[p.name] = &result{}
		if p.name == "sshuttle" {
			fmt.Fprintf(os.Stderr, "bench: %s (alone, one round)\n", labels[p.name])
			r := &pathRun{p: p, s: s, r: results[p.name]}
			r.s.Size = s.SshuttleSize
			if r.start(ctx) {
				r.download(ctx)
				r.upload(ctx)
				r.burst(ctx)
				r.ttfbChunk(ctx, r.s.Conns)
			}
			r.stopPath()
			r.finish()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			loads = append(loads, "after sshuttle "+loadAverage())
		}
	}
	for _, p := range paths {
		if p.name == "sshuttle" || results[p.name].skipped {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: starting %s\n", labels[p.name])
		r := &pathRun{p: p, s: s, r: results[p.name]}
		if r.start(ctx) {
			running = append(running, r)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	unsettled := 0 // measurements started on a machine still busy after 3 s
	for i := range s.Rounds {
		chunk := s.Conns / s.Rounds
		if i < s.Conns%s.Rounds {
			chunk++
		}
		fmt.Fprintf(os.Stderr, "bench: round %d/%d\n", i+1, s.Rounds)
		// One measurement at a time for every path, so the paths compared
		// in a round are measured seconds apart.
		for _, phase := range []func(*pathRun){
			func(r *pathRun) { r.download(ctx) },
			func(r *pathRun) { r.upload(ctx) },
			func(r *pathRun) {
				for k := range s.Bursts {
					if k > 0 && !settle(ctx) {
						unsettled++
					}
					r.burst(ctx)
				}
			},
			func(r *pathRun) { r.ttfbChunk(ctx, chunk) },
		} {
			for j := range running {
				if !settle(ctx) {
					unsettled++
				}
				phase(running[(i+j)%len(running)])
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		loads = append(loads, fmt.Sprintf("after round %d %s", i+1, loadAverage()))
	}
	for _, r := range running {
		r.stopPath()
		r.finish()
	}
	running = nil
	if unsettled > 0 {
		loads = append(loads, fmt.Sprintf("%d measurements started with the machine still over a quarter busy after 3 s", unsettled))
	}
	printTable(os.Stdout, s, results, loads)
	return nil
}

func writeProfile(name, file string) {
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load average unknown"
	}
	return "load average " + strings.Join(f[:3], " ")
}

// pathRun is one path being measured: every round appends to its samples.
type pathRun struct {
	p        path
	s        setup
	r        *result
	dial     dialFunc
	stop     func() error
	downs    []float64
	ups      []float64
	cpu      [4][]float64 // client down, sshd down, client up, sshd up
	bursts   []time.Duration
	burstCPU [2][]time.Duration // client side, sshd: one per burst
	firsts   []time.Duration
	stopped  bool
}

// start starts the path and checks it really goes through the controller
// (the target sees the controller's address), waiting for sshuttle's
// firewall rules, which it installs after saying it is connected.
func (r *pathRun) start(ctx context.Context) bool {
	dial, stop, err := r.p.start(ctx, r.s)
	if err != nil {
		r.r.err = err
		r.stopped = true
		return false
	}
	r.dial, r.stop = dial, stop
	if err := waitRoute(ctx, dial, r.s, r.p.name == "direct"); err != nil {
		r.r.err = err
		r.stopPath()
		return false
	}
	return true
}

func (r *pathRun) stopPath() {
	if r.stopped {
		return
	}
	r.stopped = true
	if err := r.stop(); err != nil {
		r.r.err = errors.Join(r.r.err, err)
	}
}

// step runs one bounded measurement; a stuck path is reported, not waited
// for, and a failed path is measured no further.
func (r *pathRun) step(ctx context.Context, what string, timeout time.Duration, f func(context.Context) error) {
	if r.r.err != nil {
		return
	}
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := f(c); err != nil {
		r.r.err = fmt.Errorf("%s: %w", what, err)
	}
}

func (r *pathRun) download(ctx context.Context) {
	r.step(ctx, "download", 10*time.Minute, func(c context.Context) error {
		done := r.meterTransfer(0)
		v, err := download(c, r.dial, r.s)
		done()
		r.downs = append(r.downs, v)
		return err
	})
}

func (r *pathRun) upload(ctx context.Context) {
	r.step(ctx, "upload", 10*time.Minute, func(c context.Context) error {
		done := r.meterTransfer(2)
		v, err := upload(c, r.dial, r.s)
		done()
		r.ups = append(r.ups, v)
		return err
	})
}

// meterTransfer starts measuring the CPU time of the client side and of
// sshd; the returned function records both per GiB into r.cpu[i] and
// r.cpu[i+1].
func (r *pathRun) meterTransfer(i int) func() {
	meter := cpuMeter(r.s.SSHDPID)
	return func() {
		client, sshd := meter()
		gib := float64(r.s.Size) / (1 << 30)
		r.cpu[i] = append(r.cpu[i], client.Seconds()/gib)
		r.cpu[i+1] = append(r.cpu[i+1], sshd.Seconds()/gib)
	}
}

func (r *pathRun) burst(ctx context.Context) {
	r.step(ctx, "parallel", 5*time.Minute, func(c context.Context) error {
		meter := cpuMeter(r.s.SSHDPID)
		d, err := burst(c, r.dial, r.s)
		client, sshd := meter()
		r.bursts = append(r.bursts, d)
		r.burstCPU[0] = append(r.burstCPU[0], client)
		r.burstCPU[1] = append(r.burstCPU[1], sshd)
		return err
	})
}

// ttfbChunk opens n new connections one after another, each after the
// setup's gap.
func (r *pathRun) ttfbChunk(ctx context.Context, n int) {
	r.step(ctx, "time to first byte", 5*time.Minute+time.Duration(n)*r.s.Gap, func(c context.Context) error {
		for range n {
			if r.s.Gap > 0 {
				t := time.NewTimer(r.s.Gap)
				select {
				case <-c.Done():
					t.Stop()
					return c.Err()
				case <-t.C:
				}
			}
			d, err := firstByte(c, r.dial, r.s)
			if err != nil {
				return fmt.Errorf("connection %d: %w", len(r.firsts)+1, err)
			}
			r.firsts = append(r.firsts, d)
		}
		return nil
	})
}

func (r *pathRun) finish() {
	if r.r.err != nil || len(r.downs) == 0 || len(r.firsts) == 0 {
		if r.r.err == nil {
			r.r.err = errors.New("not measured")
		}
		return
	}
	r.r.downs, r.r.ups = slices.Clone(r.downs), slices.Clone(r.ups)
	r.r.down, r.r.up = median(r.downs), median(r.ups)
	r.r.bursts = slices.Sorted(slices.Values(r.bursts))
	r.r.parallel = r.r.bursts[len(r.r.bursts)/2]
	r.r.cpuDown, r.r.sshdDown, r.r.cpuUp, r.r.sshdUp = median(r.cpu[0]), median(r.cpu[1]), median(r.cpu[2]), median(r.cpu[3])
	r.r.burstCPU, r.r.burstSSHD = median(r.burstCPU[0]), median(r.burstCPU[1])
	slices.Sort(r.firsts)
	r.r.p50 = r.firsts[len(r.firsts)*50/100]
	r.r.p99 = r.firsts[len(r.firsts)*99/100]
	r.r.conns = len(r.firsts)
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
	local, stop, err := startSSHPort(ctx, s, func(local string) []string { return []string{"-L", local + ":" + s.Target} })
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	return func(ctx context.Context, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", local) }, stop, nil
}

// startOpenSSHSOCKS runs ssh -D: OpenSSH's own SOCKS5 port, the like of
// the tunnel's SOCKS5 port (ssh -L needs no handshake per connection).
func startOpenSSHSOCKS(ctx context.Context, s setup) (dialFunc, func() error, error) {
	local, stop, err := startSSHPort(ctx, s, func(local string) []string { return []string{"-D", local} })
	if err != nil {
		return nil, nil, err
	}
	return socksDialer(local, stop)
}

// startSSHPort runs ssh with the forwarding that forward gives for a free
// loopback address, and waits until ssh listens there.
func startSSHPort(ctx context.Context, s setup, forward func(local string) []string) (string, func() error, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	local := l.Addr().String()
	l.Close()
	host, port, _ := net.SplitHostPort(s.ControllerSSH)
	args := append(sshArgs(s), "-N", "-o", "ExitOnForwardFailure=yes", "-p", port)
	args = append(append(args, forward(local)...), "root@"+host)
	_, stop, err := startProcess("ssh", args, "")
	if err != nil {
		return "", nil, err
	}
	if err := waitListening(ctx, local, 15*time.Second); err != nil {
		return "", nil, errors.Join(err, stop())
	}
	return local, stop, nil
}

// socksDialer dials through the SOCKS5 port at addr; stop ends the port.
func socksDialer(addr string, stop func() error) (dialFunc, func() error, error) {
	d, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		return nil, nil, errors.Join(err, stop())
	}
	cd := d.(proxy.ContextDialer)
	return func(ctx context.Context, addr string) (net.Conn, error) { return cd.DialContext(ctx, "tcp", addr) }, stop, nil
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
	addr, stop, err := serveTunnel(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return socksDialer(addr, stop)
}

// startCONNECT goes through the same port as startSOCKS5 with HTTP CONNECT,
// as clients do that follow HTTPS_PROXY (kubectl, podman, kind).
func startCONNECT(ctx context.Context, s setup) (dialFunc, func() error, error) {
	proxyAddr, stop, err := serveTunnel(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", proxyAddr)
		if err != nil {
			return nil, err
		}
		defer closeOnDone(ctx, c)()
		if _, err := io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
			c.Close()
			return nil, err
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s: %w", addr, err)
		}
		if resp.StatusCode != http.StatusOK {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s: %s", addr, resp.Status)
		}
		return &bufferedConn{c, br}, nil
	}, stop, nil
}

// bufferedConn reads through the reader that took the CONNECT answer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveTunnel opens a tunnel and serves its proxy port on loopback. The
// listener sets no TCP keepalive on the connections it accepts, as
// OpenSSH's forwarding listeners do not: on loopback it has nothing to
// detect, and it costs four system calls per connection.
func serveTunnel(ctx context.Context, s setup) (string, func() error, error) {
	t, err := openTunnel(ctx, s)
	if err != nil {
		return "", nil, err
	}
	l, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, errors.Join(err, t.Close())
	}
	served := make(chan error, 1)
	go func() { served <- t.Serve(l) }()
	stop := func() error {
		err := t.Close()
		if serr := <-served; !errors.Is(serr, tunnel.ErrClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return l.Addr().String(), stop, nil
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

func printTable(w io.Writer, s setup, results map[string]*result, loads []string) {
	ref := results["openssh"]
	refOK := ref != nil && !ref.skipped && ref.err == nil
	ratio := func(v, r float64) string {
		if !refOK || r == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.2f×)", v/r)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	gap := "back to back"
	if s.Gap > 0 {
		gap = "each after a pause of " + s.Gap.String()
	}
	fmt.Fprintf(w, "\nTunnel benchmark: %d MiB each way (sshuttle: %d MiB), %d new connections (%s), %d in parallel; median of %d interleaved rounds, and of %d bursts (%d a round); sshuttle: one of each, alone; ratio to OpenSSH in brackets\n",
		s.Size>>20, s.SshuttleSize>>20, s.Conns, gap, s.Parallel, s.Rounds, s.Rounds*s.Bursts, s.Bursts)
	fmt.Fprintf(w, "%d CPUs, GOMAXPROCS %d; %s\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.Join(loads, "; "))
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
	fmt.Fprintf(w, "\nCPU time (median): the client side (this process: the clients, the tunnel and its proxy port; with ssh or sshuttle when used) and the controller's sshd, in seconds per GiB moved and in milliseconds per burst of %d\n", s.Parallel)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| path\t| download client\t| download sshd\t| upload client\t| upload sshd\t| burst client\t| burst sshd\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, p := range paths {
		r := results[p.name]
		if r.skipped || r.err != nil {
			continue
		}
		fmt.Fprintf(tw, "| %s\t| %.2f\t| %.2f\t| %.2f\t| %.2f\t| %.1f\t| %.1f\t|\n", labels[p.name], r.cpuDown, r.sshdDown, r.cpuUp, r.sshdUp, ms(r.burstCPU), ms(r.burstSSHD))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEvery round, in order (download / upload MB/s):")
	for _, p := range paths {
		r := results[p.name]
		if r.skipped || r.err != nil {
			continue
		}
		var rounds []string
		for i := range r.downs {
			rounds = append(rounds, fmt.Sprintf("%.0f/%.0f", r.downs[i], r.ups[i]))
		}
		fmt.Fprintf(w, "  %-28s %s (%d new connections)\n", labels[p.name], strings.Join(rounds, "  "), r.conns)
	}
	fmt.Fprintf(w, "\nBursts of %d, ms: fastest / first quartile / median / third quartile / slowest (how many)\n", s.Parallel)
	for _, p := range paths {
		r := results[p.name]
		if r.skipped || r.err != nil || len(r.bursts) == 0 {
			continue
		}
		b := r.bursts
		fmt.Fprintf(w, "  %-28s %.1f / %.1f / %.1f / %.1f / %.1f (%d)\n", labels[p.name],
			ms(b[0]), ms(b[len(b)/4]), ms(b[len(b)/2]), ms(b[len(b)*3/4]), ms(b[len(b)-1]), len(b))
	}
}
