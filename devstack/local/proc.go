//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/stackgate/stackgate/devstack"
)

// service is one long-running process of the environment.
type service struct {
	name string   // log and pid file name
	ns   string   // network namespace
	args []string // command line
	env  []string // extra environment
	// neutronAgent marks the controller's neutron agents, started once
	// neutron-server answers.
	neutronAgent bool
}

// baseEnv is the environment of every process: Debian's interpreters first
// (a python3 elsewhere on PATH lacks the OpenStack modules).
func baseEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
}

// start launches s in its own session inside its namespace, with its output
// appended to logs/<name>.log, and records "pid starttime" in run/<name>.pid.
func (h *Host) start(s service) error {
	logf, err := os.OpenFile(h.path(dirLogs, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- stackgate: starting %s at %s\n", s.name, time.Now().Format(time.RFC3339))
	args := s.args
	if s.ns != "" {
		args = append([]string{"ip", "netns", "exec", s.ns}, s.args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(baseEnv(), s.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = h.stateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it if it exits while this process lives
	// startTime gives 0 for a process that exited at once: pidOf never
	// takes a start time of 0 for a running process, whatever later reuses
	// the pid.
	st, _ := startTime(pid)
	if err := os.WriteFile(h.path("run", s.name+".pid"), fmt.Appendf(nil, "%d %d\n", pid, st), 0o600); err != nil {
		return fmt.Errorf("recording pid of %s: %w", s.name, err)
	}
	return nil
}

// statFields returns the fields of /proc/<pid>/stat after "pid (comm)"
// (comm may hold spaces and ")"): state, ppid, pgrp, ...; field n of
// proc(5) is statFields[n-3].
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// exited reports whether a process state (statFields' first) is a zombie's
// or a dead process's.
func exited(state string) bool { return state == "Z" || state == "X" }

// startTime returns the start time of pid in clock ticks since boot (field 22
// of /proc/<pid>/stat); 0 and an error when the process has exited (a
// zombie counts) or its stat cannot be read.
func startTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if exited(f[0]) {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// pidOf returns the recorded pid of a service and whether that very process
// (same start time) is still running. A pid recorded without a start time
// (the process had exited when it was recorded) is never running: another
// process may have its number by now.
func (h *Host) pidOf(name string) (int, bool) {
	b, err := os.ReadFile(h.path("run", name+".pid"))
	if err != nil {
		return 0, false
	}
	var pid int
	var st uint64
	if _, err := fmt.Sscan(string(b), &pid, &st); err != nil || pid <= 1 {
		return 0, false
	}
	cur, err := startTime(pid)
	return pid, err == nil && st != 0 && cur == st
}

// recorded lists the services with a pid file.
func (h *Host) recorded() []string {
	m, _ := filepath.Glob(h.path("run", "*.pid"))
	var out []string
	for _, f := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".pid"))
	}
	sort.Strings(out)
	return out
}

// tail returns the last n lines of a service's log.
func (h *Host) tail(name string, n int) string {
	b, err := os.ReadFile(h.path(dirLogs, name+".log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// serviceError names a service and shows the end of its log and, for a
// daemon that writes its errors to a log of its own (MariaDB's log-error,
// logs/<name>-error.log), the end of that one too.
func (h *Host) serviceError(name, what string) error {
	msg := fmt.Sprintf("%s %s; last lines of %s:\n%s", name, what, h.path(dirLogs, name+".log"), h.tail(name, 25))
	if p := h.path(dirLogs, name+"-error.log"); fileExists(p) {
		msg += fmt.Sprintf("\nlast lines of %s:\n%s", p, h.tail(name+"-error", 25))
	}
	return errors.New(msg)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkAlive fails with the service's log if one of names has exited.
func (h *Host) checkAlive(names ...string) error {
	for _, n := range names {
		if _, ok := h.pidOf(n); !ok {
			return h.serviceError(n, "exited while starting")
		}
	}
	return nil
}

// stopAll stops every recorded process group as stopGroups does and removes
// the pid files.
func (h *Host) stopAll(ctx context.Context, grace time.Duration) error {
	groups := map[int]string{}
	for _, n := range h.recorded() {
		if pid, ok := h.pidOf(n); ok {
			groups[pid] = n
		}
		_ = os.Remove(h.path("run", n+".pid"))
	}
	return stopGroups(ctx, groups, grace)
}

// stopOne stops one recorded process group as stopGroups does and removes
// its pid file.
func (h *Host) stopOne(ctx context.Context, name string, grace time.Duration) error {
	pid, ok := h.pidOf(name)
	_ = os.Remove(h.path("run", name+".pid"))
	if !ok {
		return nil
	}
	return stopGroups(ctx, map[int]string{pid: name}, grace)
}

// killWait bounds the wait for a process group to vanish after SIGKILL: only
// a process stuck in the kernel (uninterruptible sleep) outlasts it.
const killWait = 5 * time.Second

// stopGroups stops the process groups led by the pids of groups (pid →
// service name): SIGTERM, up to grace for them to exit (less if ctx ends),
// then SIGKILL for what is left, and up to killWait for that to take effect
// whatever ctx says, so that nothing outlives a Down that returned nil. The
// error names every group still alive then.
func stopGroups(ctx context.Context, groups map[int]string, grace time.Duration) error {
	pids := make([]int, 0, len(groups))
	for pid := range groups {
		// The group, and its leader in case it left the group.
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	alive := waitGone(ctx, pids, grace)
	for _, pid := range alive {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	alive = waitGone(context.Background(), alive, killWait)
	if len(alive) == 0 {
		return nil
	}
	var names []string
	for _, pid := range alive {
		names = append(names, fmt.Sprintf("%s (process group %d)", groups[pid], pid))
	}
	return fmt.Errorf("still running %s after SIGKILL: %s; a process in uninterruptible sleep (state D in ps) waits for the kernel, kill -9 them once it returns", killWait, strings.Join(names, ", "))
}

// groupAlive reports whether a process of the group led by pgid, or the
// leader itself if it left the group, is still running. Zombies do not
// count: they have exited and wait only to be reaped by their parent.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil && syscall.Kill(pgid, 0) != nil {
		return false // the common case, without reading /proc
	}
	if _, err := startTime(pgid); err == nil {
		return true
	}
	group := strconv.Itoa(pgid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := statFields(pid); err == nil && len(f) >= 3 && f[2] == group && !exited(f[0]) {
			return true
		}
	}
	return false
}

// waitGone polls until no process of the groups led by pids (nor a leader
// that left its group) is left, ctx ends or d has passed. It returns the
// pids of the groups still alive.
func waitGone(ctx context.Context, pids []int, d time.Duration) []int {
	_ = devstack.Poll(ctx, logr.Discard(), "process groups to end", devstack.Intervals{Timeout: max(d, time.Millisecond), Polling: goneInterval}, func(context.Context) (string, bool, error) {
		var alive []int
		for _, pid := range pids {
			if groupAlive(pid) {
				alive = append(alive, pid)
			}
		}
		pids = alive
		return fmt.Sprint(alive), len(alive) == 0, nil
	})
	return pids
}

// goneInterval is how often waitGone looks: processes asked to stop usually
// end within milliseconds.
const goneInterval = 20 * time.Millisecond

// run runs a command inside ns and returns its output. The error names the
// step and shows the end of the output; args must not hold secrets (pass
// them through env or stdin).
func (h *Host) run(ctx context.Context, step, ns string, env []string, stdin string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Dir = h.stateDir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A group of its own: on Ctrl-C the step's children (dpkg under apt,
	// mariadbd under mariadb-install-db) stop with it instead of running on
	// unrecorded. SIGTERM first, so apt and dpkg can end cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	_ = os.WriteFile(h.path(dirLogs, step+".log"), out.Bytes(), 0o600)
	if err != nil {
		if ctx.Err() != nil {
			// The group's other members had SIGTERM too: a grace period,
			// then SIGKILL for what is left. The group id stays the step's
			// own while any member lives. A context that ended before the
			// start left no process (cmd.Process is nil).
			if cmd.Process != nil {
				pgid := cmd.Process.Pid
				if alive := waitGone(context.Background(), []int{pgid}, 5*time.Second); len(alive) > 0 {
					_ = syscall.Kill(-pgid, syscall.SIGKILL)
					waitGone(context.Background(), alive, killWait)
				}
			}
			return out.String(), fmt.Errorf("%s: %w", step, ctx.Err())
		}
		return out.String(), fmt.Errorf("%s failed (%v); last lines of %s:\n%s", step, err, h.path(dirLogs, step+".log"), lastLines(out.String(), 25))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parallel runs the functions concurrently and joins their errors.
func parallel(fs ...func() error) error {
	errs := make(chan error, len(fs))
	for _, f := range fs {
		go func() { errs <- f() }()
	}
	var all []error
	for range fs {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}
