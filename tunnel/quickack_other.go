//go:build !linux

package tunnel

import "syscall"

// setQuickAck does nothing: TCP_QUICKACK is Linux's. Other systems' delayed
// ACKs are left as they are.
func setQuickAck(syscall.RawConn) {}
