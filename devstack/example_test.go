package devstack_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stackgate/stackgate/devstack"
)

// An environment the user already runs: attach, wait for the worker's zone,
// print the template variables (secrets masked) and collect the logs.
func ExampleUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	clouds, err := os.ReadFile("clouds.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	key, err := os.ReadFile("id_ed25519")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	host := &devstack.Existing{
		CloudsYAML: clouds,
		Address:    "203.0.113.5:22",
		User:       "stack",
		PrivateKey: key,
		HostKey:    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample",
	}
	env, err := devstack.Up(ctx, devstack.DefaultConfig(), host)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer env.Close()
	if err := env.WaitForSecondAZ(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	vars, err := env.Variables(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Print(vars)
	if _, err := env.CollectLogs(ctx, "_artifacts/devstack"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
