//go:build linux

package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Processes lists the pids of every process of the environment: the
// recorded services and everything that runs in its network namespaces
// (controller, worker and the qrouter-/qdhcp- namespaces its agents made,
// where dnsmasq and the privsep helpers live).
func (h *Host) Processes(ctx context.Context) ([]int, error) {
	n := h.names()
	seen := map[int]bool{}
	for _, name := range h.recorded() {
		if pid, ok := h.pidOf(name); ok {
			seen[pid] = true
		}
	}
	for _, ns := range append([]string{n.controller, n.worker}, h.neutronNamespaces(ctx)...) {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
		if err != nil {
			return nil, fmt.Errorf("listing processes of namespace %s: %w", ns, err)
		}
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				seen[pid] = true
			}
		}
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}

// MemoryUsage is the memory of the environment's processes at one moment.
type MemoryUsage struct {
	// PSS is the sum of the proportional set sizes (bytes): shared pages
	// are divided among the processes that map them, so the sum is what
	// the environment really occupies.
	PSS uint64
	// RSS is the sum of the resident set sizes (bytes), which counts every
	// shared page once per process that maps it.
	RSS uint64
	// Processes is how many processes were measured.
	Processes int
}

// Memory measures the environment's processes now (see Processes). It reads
// Pss from /proc/<pid>/smaps_rollup and VmRSS from /proc/<pid>/status;
// processes that exit while being read are left out.
func (h *Host) Memory(ctx context.Context) (MemoryUsage, error) {
	pids, err := h.Processes(ctx)
	if err != nil {
		return MemoryUsage{}, err
	}
	var m MemoryUsage
	for _, pid := range pids {
		pss, err := procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
		if err != nil {
			continue
		}
		rss, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		if err != nil {
			continue
		}
		m.PSS += pss
		m.RSS += rss
		m.Processes++
	}
	return m, nil
}

// procField returns the value in kB of the line starting with key, in bytes.
// Kernel threads and exited processes have none: an error.
func procField(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// MemorySampler measures the environment's memory at an interval in the
// background and keeps the sample with the highest PSS.
type MemorySampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	peak   MemoryUsage
	n      int
	err    error
}

// SampleMemory starts sampling every interval until Stop or ctx ends.
func (h *Host) SampleMemory(ctx context.Context, interval time.Duration) *MemorySampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &MemorySampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			m, err := h.Memory(ctx)
			s.mu.Lock()
			if err != nil && ctx.Err() == nil {
				s.err = err
			}
			if err == nil {
				s.n++
				if m.PSS > s.peak.PSS {
					s.peak = m
				}
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the sample with the highest PSS and how
// many samples were taken.
func (s *MemorySampler) Stop() (MemoryUsage, int, error) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.n, s.err
}
