//go:build linux

package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"

	"github.com/stackgate/stackgate/data"
	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/internal/netns"
)

// buildCommand compiles cmd/stackgate-local into a directory that every user
// may enter, removed after the spec tree that called it.
func buildCommand(ctx context.Context) string {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "stackgate-local-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	Expect(os.Chmod(dir, 0o755)).To(Succeed())
	bin := filepath.Join(dir, "stackgate-local")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/stackgate/stackgate/cmd/stackgate-local").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build ./cmd/stackgate-local:\n%s", out)
	return bin
}

// runCommand runs cmd and returns its stderr and exit code.
func runCommand(cmd *exec.Cmd) (string, int) {
	GinkgoHelper()
	var stderr, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	GinkgoWriter.Printf("%s\nstdout:\n%s\nstderr:\n%s\n", cmd, stdout.String(), stderr.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stderr.String(), exit.ExitCode()
	}
	Expect(err).NotTo(HaveOccurred(), "running %s", cmd)
	return stderr.String(), 0
}

var _ = Describe("a host for an instance name that cannot name namespaces", func() {
	It("is refused by New with the name and the rule, and makes nothing", func() {
		dir := filepath.Join(GinkgoT().TempDir(), "state")
		for _, bad := range []string{"Bad_Name", "", "toolongname", "-lead"} {
			h, err := local.New(local.WithInstance(bad), local.WithStateDir(dir))
			Expect(err).To(MatchError(ContainSubstring(`local host: instance name %q: use 1-8 lower case letters, digits or dashes`, bad)))
			Expect(h).To(BeNil())
		}
		_, err := os.Stat(dir)
		Expect(os.IsNotExist(err)).To(BeTrue(), "no state directory %s made", dir)
		Expect(local.New(local.WithInstance("ok-1"), local.WithStateDir(dir))).NotTo(BeNil())
	})
})

var _ = Describe("a status printed for people", func() {
	It("names what is left behind when no environment is up, and only then", func() {
		st := local.Status{Instance: "sgx", StateDir: "/state", Leftovers: []string{"namespace sgx-controller", "process keystone (pid 42)"}}
		Expect(st.String()).To(ContainSubstring("left behind (no environment is up; down removes them): namespace sgx-controller, process keystone (pid 42)\n"))
		st.Up = true
		Expect(st.String()).NotTo(ContainSubstring("left behind"), "an environment that is up is made of them")
		st.Up, st.Leftovers = false, nil
		Expect(st.String()).NotTo(ContainSubstring("left behind"))
	})
})

var _ = Describe("the stackgate-local command's usage", func() {
	It("lists its own flags and commands, not the test flags of the packages it imports", func(ctx SpecContext) {
		bin := buildCommand(ctx)
		stderr, code := runCommand(exec.CommandContext(ctx, bin, "-h"))
		Expect(code).To(BeZero(), "exit code of -h")
		Expect(stderr).To(HavePrefix("usage: " + bin + " [flags] up|down|status|bench\n"))
		for _, f := range []string{"-instance", "-state-dir", "-timeout", "-e2e.config"} {
			Expect(stderr).To(ContainSubstring("\n  "+f+" "), "flag %s listed", f)
		}
		Expect(stderr).To(ContainSubstring(`bench builds and measures its own instance "bench" with the default configuration: only -timeout applies to it.`))
		Expect(stderr).NotTo(ContainSubstring("ginkgo"))
		Expect(stderr).NotTo(ContainSubstring("kubeconfig"))

		stderr, code = runCommand(exec.CommandContext(ctx, bin))
		Expect(code).To(Equal(2), "exit code without a command")
		Expect(stderr).To(HavePrefix("usage: "))
		stderr, code = runCommand(exec.CommandContext(ctx, bin, "-no-such-flag", "status"))
		Expect(code).To(Equal(2), "exit code for an unknown flag")
		Expect(stderr).To(HavePrefix("flag provided but not defined: -no-such-flag\nusage: "))
		// Refused before anything is built: the bench instance is not this one.
		stderr, code = runCommand(exec.CommandContext(ctx, bin, "-instance", "sgbench", "-e2e.config", "/nonexistent.yaml", "bench"))
		Expect(code).To(Equal(2), "exit code for bench with flags it ignores")
		Expect(stderr).To(Equal("stackgate-local: bench measures its own instance \"bench\" with the default configuration; drop -e2e.config -instance, which it would ignore\n"))
	}, NodeTimeout(5*time.Minute))
})

var _ = Describe("the stackgate-local command on a machine it cannot use", Ordered, func() {
	var bin string

	BeforeAll(func(ctx SpecContext) {
		if os.Geteuid() != 0 {
			Skip("switching to an unprivileged user and to a private mount namespace needs root")
		}
		bin = buildCommand(ctx)
	}, NodeTimeout(10*time.Minute))

	// If a check let the command through, it would bring up this instance:
	// take it down again (a no-op when nothing was made).
	downAfter := func(instance, stateDir string) {
		DeferCleanup(func(ctx SpecContext) {
			Expect(must(local.New(local.WithInstance(instance), local.WithStateDir(stateDir))).Down(ctx)).To(Succeed())
		}, NodeTimeout(5*time.Minute))
	}

	It("refuses to run as an unprivileged user and says to use sudo", func(ctx SpecContext) {
		state := filepath.Join(GinkgoT().TempDir(), "state")
		downAfter("sgroot", state)
		cmd := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			bin, "-instance", "sgroot", "-state-dir", state, "up")
		stderr, code := runCommand(cmd)
		Expect(code).NotTo(BeZero(), "exit code of up as uid 65534")
		Expect(stderr).To(ContainSubstring("must run as root"))
		Expect(stderr).To(ContainSubstring("run with sudo"))
		_, err := os.Stat(state)
		Expect(os.IsNotExist(err)).To(BeTrue(), "no state directory %s created", state)
	}, NodeTimeout(2*time.Minute))

	It("refuses a machine without /etc/debian_version", func(ctx SpecContext) {
		// An overlay of /etc, in a private mount namespace, whose upper
		// layer holds a whiteout for debian_version: /etc stays as it is
		// but that one file is gone, for this command only.
		tmp := GinkgoT().TempDir()
		whiteout := filepath.Join(tmp, "whiteout")
		Expect(os.Mkdir(whiteout, 0o755)).To(Succeed())
		Expect(syscall.Mknod(filepath.Join(whiteout, "debian_version"), syscall.S_IFCHR|0o600, 0)).To(Succeed())
		state := filepath.Join(tmp, "state")
		downAfter("sgnodeb", state)
		cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount -t overlay overlay -o "lowerdir=$1:/etc" /etc && test ! -e /etc/debian_version && exec "$2" -instance sgnodeb -state-dir "$3" up`,
			"sh", whiteout, bin, state)
		stderr, code := runCommand(cmd)
		Expect(code).NotTo(BeZero(), "exit code of up without /etc/debian_version")
		Expect(stderr).To(ContainSubstring("needs Debian 12 (bookworm): /etc/debian_version not found"))
		_, err := os.Stat(state)
		Expect(os.IsNotExist(err)).To(BeTrue(), "no state directory %s created", state)
		_, err = os.Stat("/etc/debian_version")
		Expect(err).NotTo(HaveOccurred(), "/etc/debian_version of the machine untouched")
	}, NodeTimeout(2*time.Minute))

	It("configures up from the e2e configuration's variables where the process environment does not", func(ctx SpecContext) {
		// The embedded configuration with a floating range over the local
		// host's public range: up refuses it before making anything, which
		// shows that the value was read.
		embedded, err := data.E2E.ReadFile(data.E2EConfigPath)
		Expect(err).NotTo(HaveOccurred())
		const want = `FLOATING_RANGE: "172.24.4.0/24"`
		Expect(string(embedded)).To(ContainSubstring(want))
		conf := filepath.Join(GinkgoT().TempDir(), "e2e_conf.yaml")
		Expect(os.WriteFile(conf, bytes.Replace(embedded, []byte(want), []byte(`FLOATING_RANGE: "198.19.5.0/24"`), 1), 0o600)).To(Succeed())
		state := filepath.Join(GinkgoT().TempDir(), "state")
		downAfter("sgconf", state)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "FLOATING_RANGE=") {
				env = append(env, kv)
			}
		}
		cmd := exec.CommandContext(ctx, bin, "-instance", "sgconf", "-state-dir", state, "-e2e.config", conf, "up")
		cmd.Env = env
		stderr, code := runCommand(cmd)
		Expect(code).NotTo(BeZero(), "exit code of up with FLOATING_RANGE over the public range")
		Expect(stderr).To(ContainSubstring("FLOATING_RANGE 198.19.5.0/24 overlaps 198.19.0.0/16"))
		Expect(state).NotTo(BeADirectory(), "no state directory created")

		cmd = exec.CommandContext(ctx, bin, "-instance", "sgconf", "-state-dir", state, "-e2e.config", conf, "up")
		cmd.Env = append(env, "FLOATING_RANGE=not-a-cidr")
		stderr, code = runCommand(cmd)
		Expect(code).NotTo(BeZero(), "exit code of up with FLOATING_RANGE=not-a-cidr")
		Expect(stderr).To(ContainSubstring(`from the process environment: FLOATING_RANGE`), "the process environment wins")
		Expect(stderr).To(ContainSubstring(`FLOATING_RANGE="not-a-cidr" is not a CIDR`))
	}, NodeTimeout(2*time.Minute))
})

// publicAddresses are the two ends of an instance's public /30 (root side,
// controller side), derived from its name as the local host does.
func publicAddresses(instance string) (root, ctl netip.Addr) {
	f := fnv.New32a()
	_, _ = f.Write([]byte(instance))
	v := f.Sum32()
	third, fourth := byte(1+v%255), byte((v>>8)%64*4)
	return netip.AddrFrom4([4]byte{198, 19, third, fourth + 2}), netip.AddrFrom4([4]byte{198, 19, third, fourth + 1})
}

var _ = Describe("Up of a local instance whose public address is taken", Label("destructive"), func() {
	It("names the address and the link holding it, says how to fix it and leaves nothing behind", func(ctx SpecContext) {
		const instance = "sgaddr"
		if os.Geteuid() != 0 {
			Skip("the local host needs root (network namespaces)")
		}
		root, _ := publicAddresses(instance)
		link := netns.UniqueName("sgd")
		out, err := exec.CommandContext(ctx, "ip", "link", "add", link, "type", "veth", "peer", "name", link+"p").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "ip link add %s type veth: %s", link, out)
		DeferCleanup(func(ctx SpecContext) {
			out, err := exec.CommandContext(ctx, "ip", "link", "delete", link).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "ip link delete %s: %s", link, out)
		})
		// Both ends of the pair stay down: the address is assigned but routes nowhere.
		out, err = exec.CommandContext(ctx, "ip", "addr", "add", root.String()+"/30", "dev", link).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "ip addr add %s dev %s: %s", root, link, out)

		h := must(local.New(local.WithInstance(instance), local.WithStateDir(filepath.Join(GinkgoT().TempDir(), "state")), local.WithOutput(GinkgoWriter)))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(Succeed()) }, NodeTimeout(5*time.Minute))
		_, err = h.Up(ctx, devstack.DefaultConfig())
		Expect(err).To(HaveOccurred(), "Up with %s already on %s", root, link)
		Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("address %s is already in use on %s", root, link)))
		Expect(err.Error()).To(ContainSubstring("remove it or pick another instance name"))
		expectNothingLeft(ctx, h, instance)
	}, NodeTimeout(5*time.Minute))
})

// listenIn listens on addr inside the named network namespace. The socket
// stays in that namespace; the calling thread is switched there and back on a
// goroutine of its own, which ends with its thread if switching back fails.
func listenIn(name, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("entering namespace %s: %w", name, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and ends with this goroutine.
			if l != nil {
				l.Close()
			}
			done <- result{err: fmt.Errorf("returning from namespace %s: %w", name, err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{l, lerr}
	}()
	r := <-done
	return r.l, r.err
}

var _ = Describe("Up of a local instance whose database cannot start", Label("destructive"), func() {
	It("names the service that exited, shows the end of its log and leaves nothing behind", func(ctx SpecContext) {
		const instance = "sgdie"
		if os.Geteuid() != 0 {
			Skip("the local host needs root (network namespaces)")
		}
		h := must(local.New(local.WithInstance(instance), local.WithStateDir(filepath.Join(GinkgoT().TempDir(), "state")), local.WithOutput(GinkgoWriter)))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(Succeed()) }, NodeTimeout(5*time.Minute))

		upCtx, cancel := context.WithCancel(ctx)
		upErr := make(chan error, 1)
		upDone := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(upDone)
			_, err := h.Up(upCtx, devstack.DefaultConfig())
			upErr <- err
		}()
		DeferCleanup(func(ctx SpecContext) {
			cancel()
			select {
			case <-upDone:
			case <-ctx.Done():
			}
		}, NodeTimeout(5*time.Minute))

		// MariaDB listens on port 3306 of the controller namespace; taking
		// that port as soon as the namespace exists (MariaDB starts after
		// the network, configs and sshd) makes it exit while starting.
		ctlNS := instance + "-controller"
		var l net.Listener
		Eventually(func() error {
			if !netns.Exists(ctlNS) {
				return fmt.Errorf("namespace %s does not exist yet", ctlNS)
			}
			var err error
			l, err = listenIn(ctlNS, "0.0.0.0:3306")
			if errors.Is(err, syscall.EADDRINUSE) {
				StopTrying("MariaDB of " + instance + " took port 3306 first").Wrap(err).Now()
			}
			return err
		}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(10*time.Millisecond).
			Should(Succeed(), "listening on 0.0.0.0:3306 in namespace %s", ctlNS)
		defer l.Close()

		var err error
		Eventually(upErr).WithContext(ctx).WithTimeout(3*time.Minute).Should(Receive(&err), "Up of %s returning", instance)
		Expect(err).To(HaveOccurred(), "Up with port 3306 of the controller taken")
		log := filepath.Join(h.StateDir(), "logs", "mariadb.log")
		Expect(err.Error()).To(ContainSubstring("mariadb exited while starting"))
		Expect(err.Error()).To(ContainSubstring("last lines of " + log))
		Expect(err.Error()).To(MatchRegexp(`(?i)address already in use|bind on tcp/ip port`), "the cause, from MariaDB's log, in the error")
		expectNothingLeft(ctx, h, instance)
	}, NodeTimeout(10*time.Minute))
})

// foreignNamespace makes a namespace called name that no instance made,
// with a process running in it; both are removed after the spec.
func foreignNamespace(ctx context.Context, name string) *exec.Cmd {
	GinkgoHelper()
	topo := netns.New()
	DeferCleanup(func(ctx SpecContext) { Expect(topo.Cleanup(ctx)).To(Succeed()) }, NodeTimeout(time.Minute))
	ns, err := topo.AddNamespace(ctx, name)
	Expect(err).NotTo(HaveOccurred())
	sleeper := ns.Command(context.Background(), "sleep", "600")
	Expect(sleeper.Start()).To(Succeed())
	DeferCleanup(func() {
		_ = sleeper.Process.Kill() // the process this spec started, by its pid
		_ = sleeper.Wait()
	})
	return sleeper
}

var _ = Describe("Down without a state directory", func() {
	BeforeEach(func() {
		if os.Geteuid() != 0 {
			Skip("network namespaces need root")
		}
	})

	// topology makes namespaces and veth pairs, removed after the spec.
	topology := func() *netns.Topology {
		topo := netns.New()
		DeferCleanup(func(ctx SpecContext) { Expect(topo.Cleanup(ctx)).To(Succeed()) }, NodeTimeout(time.Minute))
		return topo
	}

	It("leaves alone a namespace of the instance's name that the instance did not make, and what runs in it", func(ctx SpecContext) {
		const instance = "sgforgn"
		sleeper := foreignNamespace(ctx, instance+"-controller")

		err := must(local.New(local.WithInstance(instance), local.WithStateDir(filepath.Join(GinkgoT().TempDir(), "none")))).Down(ctx)
		Expect(err).To(MatchError(ContainSubstring("network namespace sgforgn-controller (no link sgc-sgforgn) was not made by it")))
		Expect(err).To(MatchError(ContainSubstring("ip netns delete")))
		Expect(netns.Exists(instance+"-controller")).To(BeTrue(), "the namespace is still there")
		Expect(sleeper.Process.Signal(syscall.Signal(0))).To(Succeed(), "the process in it still runs")
	}, NodeTimeout(2*time.Minute))

	It("removes the namespaces and links that carry the instance's links", func(ctx SpecContext) {
		const instance = "sgorphan"
		topo := topology()
		ctl, err := topo.AddNamespace(ctx, instance+"-controller")
		Expect(err).NotTo(HaveOccurred())
		wk, err := topo.AddNamespace(ctx, instance+"-worker")
		Expect(err).NotTo(HaveOccurred())
		// The links an instance's Up makes: the public pair from the root
		// namespace to the controller, the worker's pair to the controller.
		Expect(topo.AddVeth(ctx, netns.Link{Name: "sgp-" + instance}, netns.Link{Name: "sgc-" + instance, Namespace: ctl})).To(Succeed())
		Expect(topo.AddVeth(ctx, netns.Link{Name: "sgw-" + instance, Namespace: wk}, netns.Link{Name: "sgb-" + instance, Namespace: ctl})).To(Succeed())

		Expect(must(local.New(local.WithInstance(instance), local.WithStateDir(filepath.Join(GinkgoT().TempDir(), "none")))).Down(ctx)).To(Succeed())
		Expect(netns.Exists(instance+"-controller")).To(BeFalse(), "controller namespace removed")
		Expect(netns.Exists(instance+"-worker")).To(BeFalse(), "worker namespace removed")
		Expect(exec.CommandContext(ctx, "ip", "link", "show", "sgp-"+instance).Run()).NotTo(Succeed(), "root end of the public pair removed")
	}, NodeTimeout(2*time.Minute))
})

var _ = Describe("Up of a local instance on a machine it must not touch", func() {
	It("refuses networks over the local host's public range before it touches anything", func(ctx SpecContext) {
		dir := filepath.Join(GinkgoT().TempDir(), "state")
		cfg := devstack.DefaultConfig()
		cfg.FloatingRange = netip.MustParsePrefix("198.19.0.0/24")
		_, err := must(local.New(local.WithInstance("sgrange"), local.WithStateDir(dir))).Up(ctx, cfg)
		Expect(err).To(MatchError(ContainSubstring("FLOATING_RANGE 198.19.0.0/24 overlaps 198.19.0.0/16")))
		Expect(err).To(MatchError(ContainSubstring("choose another network")))
		Expect(dir).NotTo(BeADirectory(), "Up made nothing, not even its state directory")
	}, NodeTimeout(time.Minute))

	It("leaves alone a namespace of the instance's name that it did not make, and what runs in it", func(ctx SpecContext) {
		if os.Geteuid() != 0 {
			Skip("network namespaces need root")
		}
		const instance = "sgforup"
		sleeper := foreignNamespace(ctx, instance+"-controller")

		h := must(local.New(local.WithInstance(instance), local.WithStateDir(filepath.Join(GinkgoT().TempDir(), "state"))))
		DeferCleanup(func(ctx SpecContext) { Expect(h.Down(ctx)).To(MatchError(ContainSubstring("was not made by it"))) }, NodeTimeout(time.Minute))
		_, err := h.Up(ctx, devstack.DefaultConfig())
		Expect(err).To(MatchError(ContainSubstring("network namespace sgforup-controller (no link sgc-sgforup) was not made by it")))
		Expect(err).To(MatchError(ContainSubstring("ip netns delete")))
		Expect(netns.Exists(instance+"-controller")).To(BeTrue(), "the namespace is still there")
		Expect(sleeper.Process.Signal(syscall.Signal(0))).To(Succeed(), "the process in it still runs")
		Expect(netns.Exists(instance+"-worker")).To(BeFalse(), "Up made no namespace of its own")
	}, NodeTimeout(5*time.Minute))
})
