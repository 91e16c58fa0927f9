//go:build unix

package buildscript

import (
	"os"
	"syscall"
)

// The script and its builds run in their own process group, sent SIGTERM
// when the context ends; the scripts remove their partial builds.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func interrupt(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGTERM) }
