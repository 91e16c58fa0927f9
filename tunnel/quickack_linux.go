package tunnel

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setQuickAck puts the socket in quick-ack mode: the next ACK leaves at
// once instead of after Linux's delayed-ACK timer (see sshSocket).
func setQuickAck(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
