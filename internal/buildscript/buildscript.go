// Package buildscript runs the repository's cache-building scripts
// (hack/envtest/build.sh, hack/capi/build.sh) from tests: each prints the
// directory of what it built, builds only when its cache is cold, and
// removes a partial build when interrupted.
package buildscript

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Dir returns the directory named by the environment variable envVar when
// it is set and holds every file in want; otherwise it runs script (bounded
// by timeout, its progress on log) and returns the directory it printed.
// The error names the variable, the script and the make target that builds
// it ahead of time.
func Dir(ctx context.Context, envVar, script, makeTarget string, timeout time.Duration, log io.Writer, want ...string) (string, error) {
	if dir := os.Getenv(envVar); dir != "" {
		for _, f := range want {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return "", fmt.Errorf("%s=%s has no %s: %w; unset it to build with %s", envVar, dir, f, err, script)
			}
		}
		return dir, nil
	}
	script, err := filepath.Abs(script)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "%s is unset: running %s (cached; a cold build takes minutes)\n", envVar, script)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return interrupt(cmd.Process) }
	cmd.WaitDelay = time.Minute
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("%s did not finish within %s; run `make %s` and set %s to the directory it prints", script, timeout, makeTarget, envVar)
		}
		return "", fmt.Errorf("%s: %w; run `make %s` and set %s to the directory it prints", script, err, makeTarget, envVar)
	}
	return strings.TrimSpace(stdout.String()), nil
}
