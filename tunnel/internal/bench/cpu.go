//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stackgate/stackgate/internal/testbed"
)

// cpuOf is the CPU time of every thread of pids, from the scheduler's
// statistics (/proc/<pid>/task/<tid>/schedstat, in nanoseconds: the clock
// ticks of /proc/<pid>/stat are too coarse for a 30 ms burst). A process
// that exits between two readings is lost from the second, so it is used
// only around work whose processes outlive it (the paths' helpers and
// sshd's per-connection server, which lives as long as the SSH
// connection).
func cpuOf(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
		tasks, _ := os.ReadDir(dir)
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
			if err != nil {
				continue
			}
			run, _, _ := strings.Cut(string(b), " ")
			ns, _ := strconv.ParseInt(run, 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// cpuMeter measures the CPU time of two process trees, the client side
// (this process with its helpers) and the controller's sshd, from the call
// until the returned function is called. The trees are listed before the
// first reading, so listing them is not counted.
func cpuMeter(sshdPID int) func() (client, sshd time.Duration) {
	clients, sshds := testbed.ProcessTree(os.Getpid()), testbed.ProcessTree(sshdPID)
	c0, s0 := cpuOf(clients), cpuOf(sshds)
	return func() (time.Duration, time.Duration) {
		c1, s1 := cpuOf(clients), cpuOf(sshds)
		return c1 - c0, s1 - s0
	}
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
