//go:build unix

package mgmtcluster

import (
	"os"
	"syscall"
)

// terminate and kill signal the manager's process group (the manager is
// its leader), so helpers it started go with it.
func terminate(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

func kill(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
