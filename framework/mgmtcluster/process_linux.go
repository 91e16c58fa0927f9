package mgmtcluster

import "syscall"

// sysProcAttr puts a manager in its own process group and has the kernel
// kill it when the process that started it dies (a suite killed hard).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
