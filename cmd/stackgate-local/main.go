//go:build linux

// Command stackgate-local brings the local DevStack host up, takes it down,
// reports its status and measures it:
//
//	stackgate-local up        # or reuse the running environment
//	stackgate-local status
//	stackgate-local down
//	stackgate-local bench     # on a separate instance "bench"
//
// up reads the configuration as the suites do (framework.ConfigFromE2EConfig):
// CAPO's variables from the process environment, else from the e2e
// configuration (-e2e.config, default the embedded data/e2e_conf.yaml).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/framework"
)

func main() {
	// A flag set of its own: the packages it imports (Ginkgo through
	// framework, controller-runtime) register their test flags and usage
	// on the process-wide one.
	flags := flag.NewFlagSet("stackgate-local", flag.ExitOnError)
	instance := flags.String("instance", local.DefaultInstance, "instance name (namespaces <instance>-controller/-worker unless default)")
	stateDir := flags.String("state-dir", "", "state directory (default: under the user cache directory)")
	timeout := flags.Duration("timeout", time.Hour, "bound for the whole command (apt included); raise it for a slow package mirror")
	e2eConfig := flags.String("e2e.config", "", "e2e configuration whose variables configure up when the process environment does not (default: the embedded data/e2e_conf.yaml, as for the suites)")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "usage: %s [flags] up|down|status|bench\n", os.Args[0])
		flags.PrintDefaults()
		fmt.Fprintf(flags.Output(), "bench builds and measures its own instance %q with the default configuration: only -timeout applies to it.\n", benchInstance)
	}
	_ = flags.Parse(os.Args[1:]) // ExitOnError: a bad flag exits with the usage
	if flags.NArg() != 1 {
		flags.Usage()
		os.Exit(2)
	}
	if flags.Arg(0) == "bench" {
		var ignored []string
		flags.Visit(func(f *flag.Flag) {
			if f.Name != "timeout" {
				ignored = append(ignored, "-"+f.Name)
			}
		})
		if len(ignored) > 0 {
			fmt.Fprintf(os.Stderr, "stackgate-local: bench measures its own instance %q with the default configuration; drop %s, which it would ignore\n", benchInstance, strings.Join(ignored, " "))
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := []local.Option{local.WithInstance(*instance), local.WithOutput(os.Stderr)}
	if *stateDir != "" {
		opts = append(opts, local.WithStateDir(*stateDir))
	}
	if err := run(ctx, flags.Arg(0), *e2eConfig, opts); err != nil {
		fmt.Fprintln(os.Stderr, "stackgate-local:", err)
		if ctx.Err() == context.DeadlineExceeded {
			fmt.Fprintf(os.Stderr, "stackgate-local: %s gave up after -timeout %s\n", flags.Arg(0), *timeout)
		}
		cancel()
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd, e2eConfig string, opts []local.Option) error {
	h, err := local.New(opts...)
	if err != nil {
		return err
	}
	switch cmd {
	case "up":
		conf, err := framework.LoadE2EConfig(ctx, e2eConfig)
		if err != nil {
			return err
		}
		cfg, err := framework.ConfigFromE2EConfig(conf)
		if err != nil {
			return err
		}
		env, err := h.Up(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("controller ssh: %s@%s (key %s/ssh/id_ed25519)\nclouds.yaml: %s/clouds.yaml (clouds %s, %s)\n",
			env.SSH.User, env.SSH.Address, env.StateDir, env.StateDir, cfg.Cloud, cfg.CloudAdmin)
		return nil
	case "down":
		return h.Down(ctx)
	case "status":
		s, err := h.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Print(s)
		return nil
	case "bench":
		return bench(ctx)
	}
	return fmt.Errorf("unknown command %q; use up, down, status or bench", cmd)
}
