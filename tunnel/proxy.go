package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Serve answers SOCKS5 (RFC 1928, CONNECT with IPv4, IPv6 or domain-name
// targets, no authentication) and HTTP proxy requests (CONNECT, and plain
// requests with absolute URLs) on l, dialling through DialContext. The
// protocol is told apart by the first byte. Serve returns when l fails or
// the tunnel is closed; Close closes l and every proxied connection.
// Listen on loopback: the proxy has no authentication.
func (t *Tunnel) Serve(l net.Listener) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.listeners, l)
		t.mu.Unlock()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-t.done:
				return ErrClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("tunnel: serving on %s: %w", l.Addr(), err)
		}
		if !t.track(c) {
			_ = c.Close()
			return ErrClosed
		}
		go func() {
			defer t.wg.Done()
			defer t.untrack(c)
			t.serveConn(c)
		}()
	}
}

// track records a proxied connection so Close can end it, and counts its
// goroutine (under the lock, so Close never waits while one is added).
func (t *Tunnel) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.proxied[c] = struct{}{}
	t.wg.Add(1)
	return true
}

func (t *Tunnel) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.proxied, c)
	t.mu.Unlock()
	_ = c.Close()
}

func (t *Tunnel) serveConn(c net.Conn) {
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	if first[0] == 5 {
		t.serveSOCKS5(c, br)
		return
	}
	t.serveHTTP(c, br)
}

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	socksSucceeded          = 0
	socksGeneralFailure     = 1
	socksNetworkUnreachable = 3
	socksHostUnreachable    = 4
	socksConnectionRefused  = 5
	socksCommandUnsupported = 7
	socksAddressUnsupported = 8
)

func (t *Tunnel) serveSOCKS5(c net.Conn, br *bufio.Reader) {
	// Greeting: VER NMETHODS METHODS...
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return
	}
	noAuth := false
	for _, m := range methods {
		noAuth = noAuth || m == 0
	}
	if !noAuth {
		_, _ = c.Write([]byte{5, 0xff})
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return
	}
	// Request: VER CMD RSV ATYP DST.ADDR DST.PORT
	req := make([]byte, 4)
	if _, err := io.ReadFull(br, req); err != nil {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make([]byte, 4)
		if req[3] == 4 {
			ip = make([]byte, 16)
		}
		if _, err := io.ReadFull(br, ip); err != nil {
			return
		}
		host = net.IP(ip).String()
	case 3:
		n, err := br.ReadByte()
		if err != nil {
			return
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(br, name); err != nil {
			return
		}
		host = string(name)
	default:
		socksReply(c, socksAddressUnsupported)
		return
	}
	portBytes := make([]byte, 2)
	if _, err := io.ReadFull(br, portBytes); err != nil {
		return
	}
	if req[1] != 1 {
		socksReply(c, socksCommandUnsupported)
		return
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(portBytes))))
	target, err := t.proxyDial(addr)
	if err != nil {
		t.log.V(1).Info("socks5 dial failed", "target", addr, "error", err.Error())
		socksReply(c, socksCode(err))
		return
	}
	defer target.Close()
	if !socksReply(c, socksSucceeded) {
		return
	}
	pipe(c, br, target)
}

func socksReply(c net.Conn, code byte) bool {
	// BND.ADDR 0.0.0.0:0: clients of CONNECT do not use it.
	_, err := c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
	return err == nil
}

func socksCode(err error) byte {
	var oce *ssh.OpenChannelError
	switch {
	case errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed:
		return socksConnectionRefused
	case errors.Is(err, syscall.ECONNREFUSED):
		return socksConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return socksNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, context.DeadlineExceeded):
		return socksHostUnreachable
	}
	return socksGeneralFailure
}

func (t *Tunnel) proxyDial(addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	return t.DialContext(ctx, "tcp", addr)
}

func (t *Tunnel) serveHTTP(c net.Conn, br *bufio.Reader) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method == http.MethodConnect {
		target, err := t.proxyDial(req.Host)
		if err != nil {
			t.log.V(1).Info("CONNECT failed", "target", req.Host, "error", err.Error())
			_, _ = fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n%v\n", err)
			return
		}
		defer target.Close()
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
		pipe(c, br, target)
		return
	}
	// A plain proxy request: one request per connection, forwarded with the
	// tunnel's transport.
	if req.URL.Scheme != "http" || req.URL.Host == "" {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nthis is a proxy: send CONNECT or an absolute http:// URL\n")
		return
	}
	req.RequestURI = ""
	req.Header.Del("Proxy-Connection")
	req.Header.Del("Proxy-Authorization")
	req.Close = false
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	resp, err := t.Transport().RoundTrip(req.WithContext(ctx))
	if err != nil {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n%v\n", err)
		return
	}
	defer resp.Body.Close()
	resp.Close = true
	_ = resp.Write(c)
}

// pipe copies both ways (see copyHalf) until both directions are done;
// each direction half-closes its destination when its source ends.
func pipe(client net.Conn, clientR io.Reader, target net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(target, clientR)
	}()
	copyHalf(client, target)
	wg.Wait()
}

var (
	smallCopyBuffers = sync.Pool{New: func() any { b := make([]byte, smallCopyBufferSize); return &b }}
	copyBuffers      = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}
)

// copyHalf copies src to dst, then half-closes dst (or closes it when src
// failed). It starts with a small buffer, so the many short connections
// of a burst stay cheap, and moves to a large one once a read fills the
// small one: a bulk transfer then needs fewer, larger reads and writes.
func copyHalf(dst net.Conn, src io.Reader) {
	err := copyAdaptive(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
		return
	}
	_ = dst.Close()
}

func copyAdaptive(dst io.Writer, src io.Reader) error {
	small := smallCopyBuffers.Get().(*[]byte)
	buf := *small
	var large *[]byte
	defer func() {
		smallCopyBuffers.Put(small)
		if large != nil {
			copyBuffers.Put(large)
		}
	}()
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			if n == len(buf) && large == nil {
				large = copyBuffers.Get().(*[]byte)
				buf = *large
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return rerr
		}
	}
}
