//go:build linux

package testbed

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/internal/netns"
)

// startTimeout bounds how long a process may take to say it is ready.
const startTimeout = 15 * time.Second

func (b *Bed) configureSSHD(s *SSHD) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(b.Dir, "ssh_host_ed25519_key_"+s.Name)
	if _, err := writePrivateKey(keyFile, priv); err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	// A second host key, as real hosts have several: a client that pins the
	// Ed25519 key must ask for it (HostKeyAlgorithms), or the server may
	// present this one, which clients order first by default.
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ecFile := filepath.Join(b.Dir, "ssh_host_ecdsa_key_"+s.Name)
	if _, err := writePrivateKey(ecFile, ecKey); err != nil {
		return err
	}
	s.HostKey = signer.PublicKey()
	s.HostKeyLine = ssh.MarshalAuthorizedKey(s.HostKey)
	host, port, _ := net.SplitHostPort(s.Addr)
	s.config = filepath.Join(b.Dir, "sshd_config_"+s.Name)
	conf := strings.Join([]string{
		"Port " + port,
		"ListenAddress " + host,
		"HostKey " + keyFile,
		"HostKey " + ecFile,
		"PidFile none",
		"AuthorizedKeysFile " + filepath.Join(b.Dir, "authorized_keys"),
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"PrintMotd no",
		"MaxStartups 200",
		"LogLevel INFO",
		"",
	}, "\n")
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("writing the configuration of sshd %s: %w", s.Name, err)
	}
	return nil
}

// writePrivateKey writes key to path in OpenSSH's PEM format, readable by
// its owner alone, and returns the PEM.
func writePrivateKey(path string, key crypto.PrivateKey) ([]byte, error) {
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", path, err)
	}
	pemBytes := pem.EncodeToMemory(block)
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		return nil, err
	}
	return pemBytes, nil
}

// StartSSHD starts s (again, after KillSSHD) and waits until it listens.
func (b *Bed) StartSSHD(ctx context.Context, s *SSHD) error {
	cmd, exited, err := b.start(ctx, s.ns, "sshd-"+s.Name, "Server listening on", nil, "/usr/sbin/sshd", "-D", "-e", "-f", s.config)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// ErrExited is returned by SSHD.Signal once the sshd has exited: its PID
// may belong to another process by then, so nothing is signalled.
var ErrExited = errors.New("the process has exited")

// running returns s's command while it has not exited, else nil.
func (s *SSHD) running() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil || isClosed(exited) {
		return nil, exited
	}
	return cmd, exited
}

// Running reports whether s has been started and has not exited since.
func (s *SSHD) Running() bool {
	cmd, _ := s.running()
	return cmd != nil
}

// PIDs returns the PIDs of s's listener and every process it forked; nil
// once the listener has exited (its PID may belong to another process by
// then).
func (s *SSHD) PIDs() []int {
	cmd, _ := s.running()
	if cmd == nil {
		return nil
	}
	return ProcessTree(cmd.Process.Pid)
}

// Signal sends sig to s's listener and every process it forked (the
// per-connection servers). Once the listener has exited it signals nothing
// and returns an error wrapping ErrExited.
func (s *SSHD) Signal(sig syscall.Signal) error {
	cmd, _ := s.running()
	if cmd == nil {
		return fmt.Errorf("sending signal %d (%s) to sshd %s: %w", sig, sig, s.Name, ErrExited)
	}
	if err := signalTree(cmd, sig); err != nil {
		return fmt.Errorf("sending signal %d (%s) to sshd %s: %w", sig, sig, s.Name, err)
	}
	return nil
}

// signalTree sends sig to cmd's process and every process below it. The
// process itself is signalled through its process handle (a pidfd), which
// never reaches another process that took over its PID; once it has been
// reaped the result wraps ErrExited.
func signalTree(cmd *exec.Cmd, sig syscall.Signal) error {
	pids := ProcessTree(cmd.Process.Pid)
	if err := cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("process %d: %w", cmd.Process.Pid, ErrExited)
		}
		return fmt.Errorf("kill -%d %d: %w", sig, cmd.Process.Pid, err)
	}
	var errs []error
	for _, pid := range pids[1:] {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill -%d %d: %w", sig, pid, err))
		}
	}
	return errors.Join(errs...)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// KillSSHD kills s and its per-connection servers and waits until the
// listener has exited; an sshd that has already exited is left alone.
func (b *Bed) KillSSHD(ctx context.Context, s *SSHD) error {
	cmd, exited := s.running()
	if cmd == nil {
		return nil
	}
	if err := signalTree(cmd, syscall.SIGKILL); err != nil && !errors.Is(err, ErrExited) {
		return fmt.Errorf("killing sshd %s: %w", s.Name, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for sshd %s to exit after SIGKILL: %w", s.Name, ctx.Err())
	}
}

// ProcessTree returns pid and every process below it, from /proc; nil for
// a pid that is not positive.
func ProcessTree(pid int) []int {
	if pid <= 0 {
		return nil
	}
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut after ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// start runs a command in ns, copies its output to the log and waits until
// a line contains marker.
func (b *Bed) start(ctx context.Context, ns *netns.Namespace, name, marker string, env []string, args ...string) (*exec.Cmd, chan struct{}, error) {
	cmd := ns.Command(context.Background(), args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
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
	ready := make(chan struct{})
	exited := make(chan struct{})
	b.mu.Lock()
	b.procs = append(b.procs, proc{cmd, exited})
	b.mu.Unlock()
	var last strings.Builder
	var lastMu = make(chan struct{}, 1)
	lastMu <- struct{}{}
	go func() {
		sc := bufio.NewScanner(r)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(b.log, "[%s] %s\n", name, line)
			<-lastMu
			last.Reset()
			last.WriteString(line)
			lastMu <- struct{}{}
			if !seen && strings.Contains(line, marker) {
				seen = true
				close(ready)
			}
		}
		r.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	lastLine := func() string {
		<-lastMu
		defer func() { lastMu <- struct{}{} }()
		return last.String()
	}
	select {
	case <-ready:
		return cmd, exited, nil
	case <-exited:
		return nil, nil, fmt.Errorf("%s exited before printing %q; last output: %q", name, marker, lastLine())
	case <-timer.C:
		return nil, nil, fmt.Errorf("%s did not print %q within %s; last output: %q", name, marker, startTimeout, lastLine())
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for %s to print %q: %w; last output: %q", name, marker, ctx.Err(), lastLine())
	}
}

// Env variables that turn this program into an HTTP helper.
const (
	helperAddrEnv = "STACKGATE_TESTBED_HTTP_ADDR"
	helperMarker  = "testbed http helper listening"
)

func (b *Bed) startHTTP(ctx context.Context, ns *netns.Namespace, addr string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	_, _, err = b.start(ctx, ns, "http-"+addr, helperMarker, []string{helperAddrEnv + "=" + addr}, self)
	return err
}

// RunHelperIfRequested serves HTTP and never returns when this process was
// started as an HTTP helper by the bed; call it first thing in TestMain or
// main.
func RunHelperIfRequested() {
	addr := os.Getenv(helperAddrEnv)
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	host, _, _ := net.SplitHostPort(addr)
	cl, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(CountPort)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go serveCount(cl)
	sl, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(StallPort)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go serveStall(sl)
	fmt.Println(helperMarker, addr)
	err = (&http.Server{Handler: Handler(addr), ReadHeaderTimeout: 10 * time.Second}).Serve(l)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// serveCount answers each connection on l, once the client has ended its
// writing side, with the number of bytes it sent, then closes: a service
// that needs a half-close to get through.
func serveCount(l net.Listener) {
	serveEach(l, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d\n", n)
	})
}

// serveStall accepts connections on l and leaves them alone: it reads
// nothing and writes nothing, and closes each after a minute.
func serveStall(l net.Listener) {
	serveEach(l, func(c net.Conn) {
		time.AfterFunc(time.Minute, func() { c.Close() })
	})
}

// serveEach calls serve in a goroutine of its own for every connection l
// accepts; the helper exits when l fails.
func serveEach(l net.Listener, serve func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go serve(c)
	}
}

// Handler answers:
//
//	GET /            "hello from <addr> to <client addr:port>"
//	GET /bytes?n=N   N zero bytes
//	POST /upload     reads the body, answers its length
func Handler(addr string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s to %s\n", addr, r.RemoteAddr)
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "n must be a byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 256<<10)
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r.Body}, make([]byte, 256<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d\n", n)
	})
	return mux
}

// Close kills every process the bed started, removes its namespaces, links
// and files, and reports every failure.
func (b *Bed) Close(ctx context.Context) error {
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if isClosed(p.exited) {
			continue // its PID may belong to someone else by now
		}
		if err := signalTree(p.cmd, syscall.SIGKILL); err != nil && !errors.Is(err, ErrExited) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, b.topo.Cleanup(ctx))
	if b.Dir != "" {
		errs = append(errs, os.RemoveAll(b.Dir))
	}
	return errors.Join(errs...)
}
