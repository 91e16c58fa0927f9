//go:build linux

// Command benche2e times `make e2e`: from its start to the first spec
// running, to the second availability zone being ready (the first
// WaitForSecondAZ returning) and in total, once with parallel processes and
// once serially, and prints a table.
//
//	go run ./suites/internal/benche2e [-parallel 2] [-focus multi-az]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

type result struct {
	name                       string
	firstSpec, secondAZ, total time.Duration
	specs, failed              int
	err                        error
}

func main() {
	parallel := flag.Int("parallel", 2, "processes of the parallel run")
	focus := flag.String("focus", "", "E2E_GINKGO_FOCUS for both runs")
	out := flag.String("artifacts", "_artifacts/bench-e2e", "artifacts folder of the runs")
	timeout := flag.Duration("timeout", 3*time.Hour, "bound for each make e2e run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var results []result
	for _, p := range []int{*parallel, 1} {
		results = append(results, run(ctx, *timeout, fmt.Sprintf("-p %d", p), p, *focus, filepath.Join(*out, fmt.Sprintf("p%d", p))))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tto first spec\tto second AZ ready\ttotal\tspecs\tfailed\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t\n", r.name, fmtDur(r.firstSpec), fmtDur(r.secondAZ), fmtDur(r.total), r.specs, r.failed)
	}
	_ = tw.Flush()
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", r.name, r.err)
		}
	}
	for _, r := range results {
		if r.err != nil || r.failed > 0 {
			os.Exit(1)
		}
	}
}

func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(100 * time.Millisecond).String()
}

func run(ctx context.Context, timeout time.Duration, name string, procs int, focus, artifacts string) result {
	r := result{name: name}
	abs, err := filepath.Abs(artifacts)
	if err != nil {
		r.err = err
		return r
	}
	_ = os.RemoveAll(abs)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "e2e", fmt.Sprintf("E2E_GINKGO_PARALLEL=%d", procs), "E2E_GINKGO_FOCUS="+focus, "ARTIFACTS="+abs)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// On a timeout or an interrupt make and the suites it started are
	// interrupted as by Ctrl-C in a terminal: the whole process group gets
	// SIGINT (make passes on only SIGTERM), so the suites' cleanups run.
	// make is killed if it has not exited two minutes later.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 2 * time.Minute
	start := time.Now()
	runErr := cmd.Run()
	r.total = time.Since(start)
	b, err := os.ReadFile(filepath.Join(abs, "report.e2e.json"))
	if err != nil {
		r.err = fmt.Errorf("reading the JSON report: %w (make e2e: %v)", err, runErr)
		return r
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		r.err = fmt.Errorf("parsing the JSON report: %w", err)
		return r
	}
	var first, az time.Time
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt || s.State == types.SpecStateSkipped || s.State == types.SpecStatePending {
				continue
			}
			r.specs++
			if s.State.Is(types.SpecStateFailureStates) {
				r.failed++
			}
			if first.IsZero() || s.StartTime.Before(first) {
				first = s.StartTime
			}
			for _, e := range s.ReportEntries {
				if strings.HasPrefix(e.Name, "second AZ ready") && (az.IsZero() || e.Time.Before(az)) {
					az = e.Time
				}
			}
		}
	}
	if !first.IsZero() {
		r.firstSpec = first.Sub(start)
	}
	if !az.IsZero() {
		r.secondAZ = az.Sub(start)
	}
	if runErr != nil {
		r.err = fmt.Errorf("make e2e: %w", runErr)
	}
	return r
}
