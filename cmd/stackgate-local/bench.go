package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

// bench measures a separate instance "bench" (the default environment is
// left alone): packages present to API ready, reuse, worker start to
// testaz2 usable and the environment's memory; then it takes it down.
func bench(ctx context.Context) (err error) {
	h := local.New(local.WithInstance("bench"), local.WithOutput(os.Stderr), local.WithDeferredWorker())
	cfg := devstack.DefaultConfig()
	if err := h.Down(ctx); err != nil {
		return fmt.Errorf("removing a previous bench instance: %w", err)
	}
	defer func() {
		if derr := h.Down(context.WithoutCancel(ctx)); derr != nil && err == nil {
			err = derr
		}
	}()
	if _, err := h.Up(ctx, cfg); err != nil {
		return err
	}
	t := h.Timings()
	cold := t["up"]
	apt := local.New().Timings()["packages"]
	start := time.Now()
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
	mem, procs, err := h.Memory(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-44s %s\n", "packages present -> API ready (target 3m)", cold.Round(100*time.Millisecond))
	if apt > 5*time.Second {
		fmt.Printf("%-44s %s (apt %s, recorded by the default instance)\n", "fresh machine -> API ready", (apt + cold).Round(100*time.Millisecond), apt.Round(time.Second))
	} else {
		fmt.Printf("%-44s packages were already present here; add the apt install time (see README)\n", "fresh machine -> API ready")
	}
	fmt.Printf("%-44s %s\n", "reuse of a running environment (target 10s)", reuse.Round(10*time.Millisecond))
	fmt.Printf("%-44s %s\n", "worker start -> testaz2 usable (target 30s)", worker.Round(100*time.Millisecond))
	fmt.Printf("%-44s %.2f GB in %d processes\n", "memory, sum of RSS (target 5 GB)", float64(mem)/1e9, procs)
	return nil
}
