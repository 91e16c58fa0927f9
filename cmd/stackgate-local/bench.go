//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

// loadAverage returns the 1, 5 and 15 minute load averages as /proc/loadavg
// shows them.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// benchInstance is the instance bench builds and measures.
const benchInstance = "bench"

// bench measures a separate instance "bench" (the default environment is
// left alone): packages present to API ready, reuse, worker started to
// testaz2 usable and the environment's peak memory (PSS, sampled during the
// whole run); then it takes the instance down.
func bench(ctx context.Context) (err error) {
	h, err := local.New(local.WithInstance(benchInstance), local.WithOutput(os.Stderr), local.WithDeferredWorker())
	if err != nil {
		return err
	}
	cfg := devstack.DefaultConfig()
	if err := h.Down(ctx); err != nil {
		return fmt.Errorf("removing a previous bench instance: %w", err)
	}
	defer func() {
		if derr := h.Down(context.WithoutCancel(ctx)); derr != nil && err == nil {
			err = derr
		}
	}()
	loadBefore := loadAverage()
	sampler := h.SampleMemory(ctx, 2*time.Second)
	stopped := false
	defer func() {
		if !stopped {
			sampler.Stop()
		}
	}()
	installBefore, _ := h.LastInstall()
	start := time.Now()
	if _, err := h.Up(ctx, cfg); err != nil {
		return err
	}
	up := time.Since(start)
	packages := h.Timings()["packages"]
	install, installed := h.LastInstall()
	aptRan := installed && install.At.After(installBefore.At) && install.At.After(start)

	start = time.Now()
	if _, err := h.Up(ctx, cfg); err != nil {
		return err
	}
	reuse := time.Since(start)

	if err := h.StartWorker(ctx); err != nil {
		return err
	}
	started, err := h.WorkerStarted()
	if err != nil {
		return err
	}
	if err := h.WaitWorker(ctx, 5*time.Minute); err != nil {
		return err
	}
	worker := time.Since(started)
	end, err := h.Memory(ctx)
	if err != nil {
		return err
	}
	peak, samples, serr := sampler.Stop()
	stopped = true
	if serr != nil {
		return fmt.Errorf("sampling memory: %w", serr)
	}
	if end.PSS > peak.PSS {
		peak = end
	}
	loadAfter := loadAverage()

	const w = 46
	row := func(what, value string) { fmt.Printf("%-*s %s\n", w, what, value) }
	fmt.Printf("stackgate-local bench (instance %q; load average %s before, %s after; %d cores shared with other work)\n",
		"bench", loadBefore, loadAfter, numCPU())
	switch {
	case aptRan:
		row("fresh machine -> API ready", fmt.Sprintf("%s (apt install of %d packages %s included)",
			up.Round(100*time.Millisecond), len(install.Packages), install.Duration.Round(time.Second)))
	default:
		first, ok := h.LastInstall()
		if def, derr := local.New(); derr == nil {
			if d, dok := def.LastInstall(); dok && (!ok || d.At.Before(first.At)) {
				first, ok = d, true
			}
		}
		if ok {
			row("fresh machine -> API ready", fmt.Sprintf("not measured: packages were already installed; recorded first apt install %s (%d packages, %s) + packages present -> API ready = %s",
				first.Duration.Round(time.Second), len(first.Packages), first.At.Format(time.RFC3339), (first.Duration+up-packages).Round(100*time.Millisecond)))
		} else if a, ok := aptHistory("/var/log/apt/history.log"); ok {
			row("fresh machine -> API ready", fmt.Sprintf("not measured: packages were already installed (not by stackgate); apt's history log shows their install took %s (%d packages named, ended %s) + packages present -> API ready = %s",
				a.Duration.Round(time.Second), len(a.Packages), a.At.Format(time.RFC3339), (a.Duration+up-packages).Round(100*time.Millisecond)))
		} else {
			row("fresh machine -> API ready", "not measured: packages were already installed and neither a state directory nor apt's history log recorded their install")
		}
	}
	if !aptRan {
		row("packages present -> API ready (target 3m)", up.Round(100*time.Millisecond).String())
	} else {
		row("packages present -> API ready (target 3m)", fmt.Sprintf("%s (the run above without apt)", (up-install.Duration).Round(100*time.Millisecond)))
	}
	row("reuse of a running environment (target 10s)", reuse.Round(time.Millisecond).String())
	row("worker started -> testaz2 usable (target 30s)", worker.Round(100*time.Millisecond).String())
	row("peak memory, sum of PSS (target 5 GB)", fmt.Sprintf("%.2f GB (sum of RSS at that sample %.2f GB; %d processes; peak of %d samples every 2s)",
		float64(peak.PSS)/1e9, float64(peak.RSS)/1e9, peak.Processes, samples+1))
	row("memory after the worker joined, PSS", fmt.Sprintf("%.2f GB (RSS %.2f GB, %d processes)", float64(end.PSS)/1e9, float64(end.RSS)/1e9, end.Processes))
	stages := h.Timings()
	var parts []string
	for _, s := range []string{"packages", "cleanup", "network", "configs", "ssh", "database", "ceph", "schemas+keystone", "services", "seed"} {
		if d, ok := stages[s]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", s, d.Round(100*time.Millisecond)))
		}
	}
	row("stages of the cold start", strings.Join(parts, ", "))
	return nil
}

func numCPU() int { return runtime.NumCPU() }

// aptHistory finds, in apt's history log, the last "apt-get install" whose
// command line names keystone, nova-api and neutron-server (the OpenStack
// packages of the local host) and returns its duration (End-Date minus
// Start-Date).
func aptHistory(path string) (local.AptInstall, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return local.AptInstall{}, false
	}
	var found local.AptInstall
	ok := false
	for _, entry := range strings.Split(string(b), "\n\n") {
		var start, end time.Time
		var cmdline string
		for _, l := range strings.Split(entry, "\n") {
			k, v, _ := strings.Cut(l, ": ")
			switch k {
			case "Start-Date":
				start, _ = time.ParseInLocation("2006-01-02  15:04:05", strings.TrimSpace(v), time.Local)
			case "End-Date":
				end, _ = time.ParseInLocation("2006-01-02  15:04:05", strings.TrimSpace(v), time.Local)
			case "Commandline":
				cmdline = v
			}
		}
		f := strings.Fields(cmdline)
		if start.IsZero() || end.IsZero() || !slices.Contains(f, "install") ||
			!slices.Contains(f, "keystone") || !slices.Contains(f, "nova-api") || !slices.Contains(f, "neutron-server") {
			continue
		}
		var pkgs []string
		for _, a := range f[1:] {
			if !strings.HasPrefix(a, "-") && a != "install" {
				pkgs = append(pkgs, a)
			}
		}
		found, ok = local.AptInstall{At: end, Duration: end.Sub(start), Packages: pkgs}, true
	}
	return found, ok
}
