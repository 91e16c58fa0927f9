//go:build linux

package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// stateOf returns the state letter of pid in /proc/<pid>/stat ("" once it
// is gone).
func stateOf(pid int) string {
	f, err := statFields(pid)
	if err != nil || len(f) == 0 {
		return ""
	}
	return f[0]
}

var _ = Describe("stopping the recorded processes of an instance", func() {
	// A host on a state directory of its own: only its pid files matter.
	newHost := func() *Host {
		GinkgoHelper()
		h, err := New(WithInstance("proctest"), WithStateDir(GinkgoT().TempDir()))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.MkdirAll(h.path("run"), 0o700)).To(Succeed())
		Expect(os.MkdirAll(h.path("logs"), 0o700)).To(Succeed())
		return h
	}
	// startStubborn starts a service whose shell and child ignore SIGTERM,
	// and kills its group after the spec should the code under test not.
	startStubborn := func(h *Host, name string) int {
		GinkgoHelper()
		Expect(h.start(service{name: name, args: []string{"sh", "-c", "trap '' TERM; sleep 600 & wait"}})).To(Succeed())
		pid, ok := h.pidOf(name)
		Expect(ok).To(BeTrue(), "%s running", name)
		DeferCleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		Expect(groupAlive(pid)).To(BeTrue())
		return pid
	}

	It("says a setup step was cancelled when its context ended before it could start", func(ctx SpecContext) {
		h := newHost()
		ended, cancel := context.WithCancel(ctx)
		cancel()
		_, err := h.run(ended, "never", "", nil, "", "true")
		Expect(err).To(MatchError(context.Canceled))
		Expect(err).To(MatchError(HavePrefix("never: ")))
	})

	It("stops a setup step's children with it when its context ends, SIGKILL for those that ignore SIGTERM", func(ctx SpecContext) {
		h := newHost()
		step, cancel := context.WithCancel(ctx)
		defer cancel()
		ran := make(chan error, 1)
		go func() {
			// One child ends on SIGTERM, the other ignores it: both outlive sh
			// unless the step's whole group is stopped.
			_, err := h.run(step, "children", "", nil, "", "sh", "-c",
				"sleep 600 & echo $! > polite.pid; (trap '' TERM; exec sleep 601) & echo $! > stubborn.pid; wait")
			ran <- err
		}()
		var pids []int
		for _, f := range []string{"polite.pid", "stubborn.pid"} {
			Eventually(func() error {
				b, err := os.ReadFile(h.path(f))
				if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
					return fmt.Errorf("%s not written yet", f)
				}
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err == nil {
					pids = append(pids, pid)
				}
				return err
			}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
		}
		DeferCleanup(func() {
			for _, pid := range pids {
				if stateOf(pid) != "" && stateOf(pid) != "Z" {
					_ = syscall.Kill(pid, syscall.SIGKILL) // a child of this spec's step, by its pid
				}
			}
		})
		cancel()
		var err error
		Eventually(ran).WithTimeout(30*time.Second).Should(Receive(&err), "the step to return after its context ended")
		Expect(err).To(MatchError(context.Canceled))
		for _, pid := range pids {
			Expect(stateOf(pid)).To(Or(BeEmpty(), Equal("Z")), "child %d has exited when the step returned", pid)
		}
	}, SpecTimeout(time.Minute))

	It("kills a group that ignores SIGTERM and returns only once it is gone", func(ctx SpecContext) {
		h := newHost()
		pid := startStubborn(h, "stubborn")
		Expect(h.stopAll(ctx, 300*time.Millisecond)).To(Succeed())
		Expect(groupAlive(pid)).To(BeFalse(), "no process of group %d left when stopAll returned", pid)
		Expect(h.recorded()).To(BeEmpty(), "pid files removed")
	}, SpecTimeout(time.Minute))

	It("still kills and waits when its context has ended (Ctrl-C)", func(ctx SpecContext) {
		h := newHost()
		pid := startStubborn(h, "stubborn")
		ended, cancel := context.WithCancel(ctx)
		cancel()
		Expect(h.stopOne(ended, "stubborn", 15*time.Second)).To(Succeed())
		Expect(groupAlive(pid)).To(BeFalse(), "no process of group %d left when stopOne returned", pid)
	}, SpecTimeout(time.Minute))

	It("counts a group as alive while any member runs, and not for zombies", func(ctx SpecContext) {
		// The leader exits at once, its child keeps the group alive.
		cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 600 & exit 0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		Expect(cmd.Start()).To(Succeed())
		pgid := cmd.Process.Pid
		DeferCleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		Eventually(func() string { return stateOf(pgid) }).WithContext(ctx).WithTimeout(10*time.Second).
			Should(Equal("Z"), "the group's leader exited and waits, unreaped, for this process")
		Expect(groupAlive(pgid)).To(BeTrue(), "the leader's sleep still runs in its group")

		Expect(syscall.Kill(-pgid, syscall.SIGKILL)).To(Succeed())
		Eventually(func() bool { return groupAlive(pgid) }).WithContext(ctx).WithTimeout(10*time.Second).
			Should(BeFalse(), "a group of only a zombie leader is not alive")
		Expect(stateOf(pgid)).To(Equal("Z"), "the leader is still an unreaped zombie")
		Expect(cmd.Wait()).To(Succeed(), "sh had exited by itself") // reaped: nothing left
		Expect(stateOf(pgid)).To(BeEmpty())
	}, SpecTimeout(time.Minute))
})
