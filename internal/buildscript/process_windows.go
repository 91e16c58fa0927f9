package buildscript

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func interrupt(p *os.Process) error { return p.Kill() }
