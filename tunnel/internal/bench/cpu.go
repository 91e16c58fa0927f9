package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux this runs on).
const clockTick = 10 * time.Millisecond

// cpuTime is the user plus system CPU time of pid and of every process
// below it, read from /proc. Processes that exit between two readings are
// lost from the second, so it is used only around a transfer whose
// processes outlive it (the paths' helpers and sshd's per-connection
// server, which lives as long as the SSH connection).
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	type proc struct {
		ppid int
		cpu  time.Duration
	}
	procs := map[int]proc{}
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
		// pid (comm) state ppid ... utime stime: comm may hold spaces, so
		// count fields after the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		procs[p] = proc{ppid, time.Duration(utime+stime) * clockTick}
	}
	children := map[int][]int{}
	for p, pr := range procs {
		children[pr.ppid] = append(children[pr.ppid], p)
	}
	var total time.Duration
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		total += procs[p].cpu
		todo = append(todo, children[p]...)
	}
	return total
}

// busyCPUs is the machine's busy time from /proc/stat's first line (every
// field but idle and iowait), in clock ticks.
func busyCPUs() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// settle waits, at most maxSettle, until the machine has been less than a
// quarter busy over one 50 ms sample: the previous measurement's tail (sshd
// closing a hundred channels, sockets winding down) must not fall on the
// next path's figures. It reports whether the machine settled.
func settle(ctx context.Context) bool {
	const (
		sample    = 50 * time.Millisecond
		maxSettle = 3 * time.Second
	)
	deadline := time.Now().Add(maxSettle)
	b0, t0 := busyCPUs()
	for time.Now().Before(deadline) {
		t := time.NewTimer(sample)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		b1, t1 := busyCPUs()
		if t1 > t0 && float64(b1-b0)/float64(t1-t0) < 0.25 {
			return true
		}
		b0, t0 = b1, t1
	}
	return false
}
