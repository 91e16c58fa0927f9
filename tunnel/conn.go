package tunnel

import (
	"bufio"
	"net"
	"syscall"
)

// readBufferSize is the read buffer in front of the SSH socket: one read
// syscall fetches several 32 KiB SSH packets instead of two per packet.
const readBufferSize = 256 << 10

// Proxied connections (SOCKS5, CONNECT) are copied with a small buffer
// first and a large one once the small one fills.
const (
	smallCopyBufferSize = 32 << 10
	copyBufferSize      = 256 << 10
)

// sshSocket is the client's TCP connection to sshd. It buffers reads and,
// on Linux, re-arms TCP_QUICKACK after each read from the socket
// (quickack_linux.go). sshd sets TCP_NODELAY only towards the target, so on
// its socket to us Nagle waits for our ACK of the previous small packet;
// Linux delays that ACK by up to 40 ms unless quick-ack mode is on, and the
// kernel leaves quick-ack mode on its own, so it is set again after every
// read. Elsewhere quickAck does nothing.
type sshSocket struct {
	*net.TCPConn
	raw syscall.RawConn
	br  *bufio.Reader
}

func newSSHSocket(c *net.TCPConn) net.Conn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	s := &sshSocket{TCPConn: c, raw: raw}
	s.quickAck()
	s.br = bufio.NewReaderSize(socketReader{s}, readBufferSize)
	return s
}

func (s *sshSocket) quickAck() { setQuickAck(s.raw) }

// Read reads through the buffer.
func (s *sshSocket) Read(p []byte) (int, error) { return s.br.Read(p) }

// socketReader reads from the socket itself and re-arms quick-ack.
type socketReader struct{ s *sshSocket }

func (r socketReader) Read(p []byte) (int, error) {
	n, err := r.s.TCPConn.Read(p)
	if n > 0 {
		r.s.quickAck()
	}
	return n, err
}
