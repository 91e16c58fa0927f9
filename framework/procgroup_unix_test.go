//go:build unix

package framework_test

import (
	"os/exec"
	"syscall"
)

// inOwnProcessGroup runs cmd in a process group of its own, and makes its
// cancellation send sig to the whole group, so that no child it started
// outlives it.
func inOwnProcessGroup(cmd *exec.Cmd, sig syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, sig) }
}
