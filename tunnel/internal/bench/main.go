//go:build linux

// Command bench measures, side by side on one network-namespace topology,
// direct routing, OpenSSH `ssh -L` (aes128-gcm@openssh.com, the Go
// client's cipher), OpenSSH's SOCKS5 port (`ssh -D`, the like of the
// tunnel's port: two handshake round trips per connection that -L does
// not need), sshuttle, the tunnel in-process, and the tunnel's proxy port
// with SOCKS5 and with HTTP CONNECT (one round trip; what clients that
// follow HTTPS_PROXY use): MB/s both ways for one large transfer, time to
// first byte over many new connections, and the time and CPU time of a
// burst of parallel connections. Every figure is also given as a ratio to
// OpenSSH's -L. Run it as root:
//
//	go run ./tunnel/internal/bench [-size 1073741824] [-sshuttle-size 268435456] [-conns 1000] [-gap 0] [-parallel 100] [-rounds 5] [-bursts 5]
//
// sshuttle is measured first and alone (its firewall rules would capture
// the direct path); the other paths then take turns round by round in a
// rotating order, so load from other work on a shared machine falls on all
// of them alike, and each figure is the median over the rounds. The load
// average is printed with the table, and every round's bulk figures after
// it. -cpuprofile, -blockprofile and -memprofile profile the client side.
//
// The client side runs in a namespace of its own, so the route it needs
// for direct routing and sshuttle's iptables rules never touch the host.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/stackgate/stackgate/internal/testbed"
)

// measureEnv carries the bed's description to the measuring child.
const measureEnv = "STACKGATE_BENCH_MEASURE"

// setup is what the measuring child needs to know about the bed.
type setup struct {
	ControllerSSH  string
	HostKeyLine    string
	UserKeyFile    string
	KnownHostsFile string
	Target         string // host:port of the HTTP server behind the controller
	Size           int64
	SshuttleSize   int64
	Conns          int
	Gap            time.Duration // pause between the time-to-first-byte connections
	Parallel       int
	Bursts         int // parallel bursts per path and round
	Rounds         int
	Skip           []string
	SSHDPID        int    // the controller's sshd listener, for its CPU time
	CPUProfile     string // files for the measuring process's profiles
	BlockProfile   string
	MemProfile     string
}

func main() {
	testbed.RunHelperIfRequested()
	if path := os.Getenv(measureEnv); path != "" {
		if err := measure(path); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	size := flag.Int64("size", 1<<30, "bytes moved in each direction by the bulk transfers")
	sshuttleSize := flag.Int64("sshuttle-size", 256<<20, "bytes moved each way through sshuttle, which moves only tens of MB/s")
	conns := flag.Int("conns", 1000, "new connections for the time-to-first-byte figures")
	gap := flag.Duration("gap", 0, "pause before each time-to-first-byte connection (e.g. 5ms: connections that find the client side idle, as kubectl's and gophercloud's requests often do; 0: back to back)")
	rounds := flag.Int("rounds", 5, "bulk transfers per path; the median is shown (sshuttle: one)")
	bursts := flag.Int("bursts", 5, "parallel bursts per path in each round, each on a settled machine: a burst lasts tens of milliseconds, so one per round is too few samples for a stable median")
	parallel := flag.Int("parallel", 100, "connections in the parallel burst")
	var skip stringList
	flag.Var(&skip, "skip", "path to leave out (direct, openssh, openssh-socks, sshuttle, tunnel, socks5, connect); repeatable")
	cpuProfile := flag.String("cpuprofile", "", "write the measuring process's CPU profile (the client side: tunnel, SOCKS5 port, readers) to this file")
	blockProfile := flag.String("blockprofile", "", "write the measuring process's block profile to this file")
	memProfile := flag.String("memprofile", "", "write the measuring process's allocation profile to this file")
	logFile := flag.String("log", "", "file for sshd's and the helpers' output (default: discarded)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, setup{Size: *size, SshuttleSize: *sshuttleSize, Conns: *conns, Gap: *gap, Parallel: *parallel, Bursts: max(1, *bursts), Rounds: max(1, *rounds), Skip: skip,
		CPUProfile: abs(*cpuProfile), BlockProfile: abs(*blockProfile), MemProfile: abs(*memProfile)}, *logFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// abs makes a profile path absolute: the measuring child runs elsewhere.
func abs(p string) string {
	if p == "" {
		return ""
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, s setup, logFile string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it builds network namespaces and runs sshd")
	}
	for _, bin := range []string{"/usr/sbin/sshd", "ssh", "sshuttle", "iptables", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: apt-get install openssh-server openssh-client sshuttle iptables curl", bin)
		}
	}
	opts := testbed.Options{ClientNamespace: true, RouteBehind: true}
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.Log = f
	}
	fmt.Fprintln(os.Stderr, "bench: building the topology")
	bed, err := testbed.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, bed.Close(context.WithoutCancel(ctx)))
	}()
	s.ControllerSSH = bed.ControllerSSHD.Addr
	s.HostKeyLine = string(bed.ControllerSSHD.HostKeyLine)
	s.UserKeyFile = bed.UserKeyFile
	s.KnownHostsFile = bed.KnownHostsFile
	if pids := bed.ControllerSSHD.PIDs(); len(pids) > 0 {
		s.SSHDPID = pids[0]
	}
	s.Target = fmt.Sprintf("%s:%d", testbed.PrivateHost, testbed.HTTPPort)
	path := bed.Dir + "/bench.json"
	b, _ := json.Marshal(s)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := bed.Client.Command(ctx, self)
	cmd.Env = append(os.Environ(), measureEnv+"="+path)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// On Ctrl-C the child gets the signal too and stops its own processes.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("measuring in namespace %s: %w", bed.Client.Name, err)
	}
	return nil
}
