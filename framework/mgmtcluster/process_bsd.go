//go:build unix && !linux

package mgmtcluster

import "syscall"

// sysProcAttr puts a manager in its own process group.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
