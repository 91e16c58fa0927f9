//go:build !unix

package framework_test

import (
	"os/exec"
	"syscall"
)

// inOwnProcessGroup makes cmd's cancellation kill it: this system has no
// process groups to signal (the children cmd started are not reached).
func inOwnProcessGroup(cmd *exec.Cmd, _ syscall.Signal) {
	cmd.Cancel = func() error { return cmd.Process.Kill() }
}
