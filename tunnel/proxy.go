package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Serve answers SOCKS5 (RFC 1928, CONNECT with IPv4, IPv6 or domain-name
// targets, no authentication) and HTTP proxy requests (CONNECT, and plain
// requests with absolute URLs, one per connection) on l, dialling through
// DialContext. The protocol is told apart by the first byte. A plain
// request ends when its client closes or half-closes the connection once
// the request's body has been forwarded, as net/http's server cancels its
// requests' contexts; while the body is still being sent, a client that
// goes away ends the request by failing the body's read. Serve returns when
// l fails or the tunnel is closed; Close closes l and every proxied
// connection.
// Listen on loopback: the proxy has no authentication. A listener from
// net.ListenConfig{KeepAlive: -1} spares four system calls per connection:
// TCP keepalive has nothing to detect on loopback.
func (t *Tunnel) Serve(l net.Listener) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = l.Close()
		return ErrClosed
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.listeners, l)
		t.mu.Unlock()
	}()
	var pause time.Duration // after a passing failure, as net/http's Server does
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-t.done:
				return ErrClosed
			default:
			}
			if !passing(err) {
				return fmt.Errorf("tunnel: serving on %s: %w", l.Addr(), err)
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t.log.V(1).Info("accept failed; retrying", "address", l.Addr().String(), "retryIn", pause.String(), "error", err.Error())
			if !t.pause(pause) {
				return ErrClosed
			}
			continue
		}
		pause = 0
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

// passing reports whether an accept error may clear up by itself: a
// timeout, or a process or system out of file descriptors or memory.
func passing(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED)
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

// clientReaders holds the buffered readers of proxied connections: a
// burst of connections then reuses a few instead of allocating (and
// zeroing) one each.
var clientReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

func (t *Tunnel) serveConn(c net.Conn) {
	br := clientReaders.Get().(*bufio.Reader)
	br.Reset(c)
	first, err := br.Peek(1)
	switch {
	case err != nil:
	case first[0] == 5:
		t.serveSOCKS5(c, br) // returns when both directions are done
	default:
		// Not pooled: a plain request's body reads from br, and
		// http.Transport may still do so after RoundTrip returns.
		t.serveHTTP(c, br)
		return
	}
	br.Reset(nil)
	clientReaders.Put(br)
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

// socksNoAuth is the method selection reply: no authentication.
var socksNoAuth = []byte{5, 0}

// socksNoAcceptableMethod refuses a client that offers only methods with
// authentication.
var socksNoAcceptableMethod = []byte{5, 0xff}

func (t *Tunnel) serveSOCKS5(c net.Conn, br *bufio.Reader) {
	// Greeting: VER NMETHODS METHODS... Read in place (Peek, then
	// Discard): a burst of connections allocates nothing here.
	hdr, err := br.Peek(2)
	if err != nil {
		return
	}
	n := 2 + int(hdr[1])
	greeting, err := br.Peek(n)
	if err != nil {
		return
	}
	noAuth := bytes.IndexByte(greeting[2:], 0) >= 0
	_, _ = br.Discard(n)
	if !noAuth {
		_, _ = c.Write(socksNoAcceptableMethod)
		return
	}
	if _, err := c.Write(socksNoAuth); err != nil {
		return
	}
	// Request: VER CMD RSV ATYP DST.ADDR DST.PORT
	req, err := br.Peek(4)
	if err != nil {
		return
	}
	if req[0] != 5 {
		return // not SOCKS5: there is no reply a client could read
	}
	cmd, atyp := req[1], req[3]
	var addrLen, addrStart int
	switch atyp {
	case 1:
		addrStart, addrLen = 4, net.IPv4len
	case 4:
		addrStart, addrLen = 4, net.IPv6len
	case 3:
		b, err := br.Peek(5)
		if err != nil {
			return
		}
		addrStart, addrLen = 5, int(b[4])
	default:
		socksReply(c, socksAddressUnsupported)
		return
	}
	n = addrStart + addrLen + 2
	req, err = br.Peek(n)
	if err != nil {
		return
	}
	var host string
	if atyp == 3 {
		host = string(req[addrStart : addrStart+addrLen])
	} else {
		ip, _ := netip.AddrFromSlice(req[addrStart : addrStart+addrLen])
		host = ip.Unmap().String()
	}
	port := binary.BigEndian.Uint16(req[n-2:])
	_, _ = br.Discard(n)
	if host == "" {
		// Refused once the whole request is read: closing on unread bytes
		// would reset the connection before the client reads the reply.
		socksReply(c, socksHostUnreachable)
		return
	}
	if cmd != 1 {
		socksReply(c, socksCommandUnsupported)
		return
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
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
	// A client that goes away ends the request: once its body is read, the
	// connection is watched for its end, as net/http's server does for its
	// handlers' contexts.
	watched := make(chan struct{})
	var watchOnce sync.Once
	watch := func() {
		watchOnce.Do(func() {
			go func() {
				defer close(watched)
				watchClient(br, cancel)
			}()
		})
	}
	defer func() {
		watchOnce.Do(func() { close(watched) }) // never started
		// End the watch: a deadline in the past, or closing c for a
		// connection without deadlines (it is closed after this anyway).
		if c.SetReadDeadline(aLongTimeAgo) != nil {
			_ = c.Close()
		}
		<-watched
	}()
	if req.Body == nil || req.Body == http.NoBody {
		watch()
	} else {
		req.Body = &onEOF{ReadCloser: req.Body, f: watch}
	}
	resp, err := t.Transport().RoundTrip(req.WithContext(ctx))
	if err != nil {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n%v\n", err)
		return
	}
	defer resp.Body.Close()
	resp.Close = true
	_ = resp.Write(c)
}

// aLongTimeAgo is a deadline that ends a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// watchClient reads what the client sends after its request (nothing, or a
// pipelined request, which is not served: one request per connection) and
// calls cancel when the read fails: the client closed or half-closed the
// connection, it broke, or serveHTTP, done with the request, ended the
// watch (cancelling then changes nothing).
func watchClient(r io.Reader, cancel context.CancelFunc) {
	var buf [512]byte
	for {
		if _, err := r.Read(buf[:]); err != nil {
			cancel()
			return
		}
	}
}

// onEOF calls f once its body has been read to the end.
type onEOF struct {
	io.ReadCloser
	f func()
}

func (b *onEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.f()
	}
	return n, err
}

// pipe copies both ways until both directions are done. A direction that
// ends first half-closes its destination (see halfClose). The one that ends
// last closes the target outright: with both directions over, the SSH
// channel needs only CHANNEL_CLOSE, not EOF and then CLOSE (RFC 4254
// section 5.3 allows a close without EOF), which spares a packet, a write
// and a wake-up of the server per connection. The client socket is closed
// by the caller.
func pipe(client net.Conn, clientR io.Reader, target net.Conn) {
	var ended atomic.Int32
	last := func() bool { return ended.Add(1) == 2 }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := copyAdaptive(target, clientR); err == nil && !last() {
			halfClose(target)
			return
		}
		_ = target.Close()
	}()
	if err := copyAdaptive(client, target); err == nil && !last() {
		halfClose(client)
	} else {
		_ = client.Close()
	}
	wg.Wait()
}

var (
	smallCopyBuffers = sync.Pool{New: func() any { b := make([]byte, smallCopyBufferSize); return &b }}
	copyBuffers      = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}
)

// halfClose ends the writing side of c (a TCP FIN, an SSH channel's EOF),
// or closes it when it has no such side.
func halfClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// copyAdaptive copies src to dst. It starts with a small buffer, so the
// many short connections of a burst stay cheap, and moves to a large one
// once a read fills the small one: a bulk transfer then needs fewer, larger
// reads and writes.
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
