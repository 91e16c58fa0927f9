package tunnel

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Buffers of the routed connections' reader goroutines: small ones while
// reads come in small pieces (an idle connection holds one), large ones
// once a read fills a small one, as in a bulk transfer. Writes are copied
// into buffers of the same two sizes.
const (
	smallRoutedBufferSize = 16 << 10
	largeRoutedBufferSize = 128 << 10
)

var (
	smallRoutedBuffers = sync.Pool{New: func() any { b := make([]byte, smallRoutedBufferSize); return &b }}
	largeRoutedBuffers = sync.Pool{New: func() any { b := make([]byte, largeRoutedBufferSize); return &b }}
)

func getRoutedBuffer(large bool) *[]byte {
	if large {
		return largeRoutedBuffers.Get().(*[]byte)
	}
	return smallRoutedBuffers.Get().(*[]byte)
}

func putRoutedBuffer(b *[]byte) {
	if len(*b) == largeRoutedBufferSize {
		largeRoutedBuffers.Put(b)
		return
	}
	smallRoutedBuffers.Put(b)
}

// directTCPIP is the payload of a direct-tcpip channel open (RFC 4254
// section 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// dialRouted opens a direct-tcpip channel to target (host:port, port
// numeric) on c. The open waits for the controller's answer in a goroutine
// of its own, so that the dial ends when ctx does; a channel confirmed
// after that is closed.
func dialRouted(ctx context.Context, c *ssh.Client, target string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, err
	}
	payload := ssh.Marshal(&directTCPIP{Host: host, Port: uint32(port), OriginHost: "0.0.0.0"})
	type opened struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	result := make(chan opened, 1)
	go func() {
		ch, reqs, err := c.OpenChannel("direct-tcpip", payload)
		result <- opened{ch, reqs, err}
	}()
	select {
	case o := <-result:
		if o.err != nil {
			return nil, o.err
		}
		raddr := &net.TCPAddr{IP: net.IPv4zero}
		if ip, err := netip.ParseAddr(host); err == nil {
			raddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
		}
		return newRoutedConn(o.ch, o.reqs, &net.TCPAddr{IP: net.IPv4zero}, raddr), nil
	case <-ctx.Done():
		go func() {
			if o := <-result; o.err == nil {
				_ = o.ch.Close()
				ssh.DiscardRequests(o.reqs)
			}
		}()
		return nil, ctx.Err()
	}
}

// routedConn is the net.Conn of a routed connection: a direct-tcpip
// channel of golang.org/x/crypto/ssh as released, with what a TCP
// connection has and the channel lacks.
//
// Deadlines: the channel's Read and Write block until data, window or
// close, and cannot be interrupted. A reader goroutine reads the channel
// into buffers that Read takes from, and a writer goroutine writes what
// Write copied for it; Read and Write wait for them, their deadline or
// Close, and fail with os.ErrDeadlineExceeded (a net.Error whose Timeout
// is true) once the deadline has passed. Nothing is lost: what the reader
// goroutine got is read later, and a piece of a Write handed to the writer
// goroutine is counted as written and still sent, as a TCP socket sends
// what its buffer took. The writer goroutine also refuses the channel's
// requests (servers send none on direct-tcpip).
//
// Close: the first succeeds also when the target closed first (the
// channel's own Close then reports io.EOF, its close having been answered
// already); a second fails with net.ErrClosed. Both as TCP's.
type routedConn struct {
	ch           ssh.Channel
	laddr, raddr net.Addr

	readDeadline, writeDeadline connDeadline

	done       chan struct{} // closed by the first Close
	closed     atomic.Bool
	writerGone chan struct{} // closed when the writer goroutine returns

	// Read's side; rmu makes Reads take turns.
	rmu    sync.Mutex
	chunks chan readChunk // from the reader goroutine; the last one has err set
	cur    readChunk      // being read from
	rerr   error          // the reader goroutine's error, once cur is used up

	// Write's side; wmu makes Writes (and CloseWrite) take turns.
	wmu      sync.Mutex
	wreq     chan []byte      // to the writer goroutine
	wres     chan writeResult // from it: one result per request
	inflight *[]byte          // the buffer of a request whose result is not yet taken
	werr     error            // a write that failed fails every later one
}

// readChunk is what one read of the channel got.
type readChunk struct {
	buf  *[]byte
	data []byte // the unread part of *buf
	err  error
}

type writeResult struct {
	n   int
	err error
}

func newRoutedConn(ch ssh.Channel, reqs <-chan *ssh.Request, laddr, raddr net.Addr) *routedConn {
	c := &routedConn{
		ch:         ch,
		laddr:      laddr,
		raddr:      raddr,
		done:       make(chan struct{}),
		writerGone: make(chan struct{}),
		chunks:     make(chan readChunk, 1),
		wreq:       make(chan []byte),
		wres:       make(chan writeResult, 1),
	}
	c.readDeadline.init()
	c.writeDeadline.init()
	go c.readLoop()
	go c.writeLoop(reqs)
	return c
}

// readLoop reads the channel until it ends or the connection is closed.
// The chunk with the error (io.EOF at the target's end) is the last.
func (c *routedConn) readLoop() {
	large := false
	for {
		b := getRoutedBuffer(large)
		n, err := c.ch.Read(*b)
		large = n == len(*b)
		if n == 0 && err == nil {
			putRoutedBuffer(b)
			continue
		}
		select {
		case c.chunks <- readChunk{buf: b, data: (*b)[:n], err: err}:
		case <-c.done:
			putRoutedBuffer(b)
			return
		}
		if err != nil {
			return
		}
	}
}

// writeLoop writes what Write hands it and refuses the channel's
// requests, until the connection is closed or the channel is gone (its
// requests channel closed).
func (c *routedConn) writeLoop(reqs <-chan *ssh.Request) {
	defer close(c.writerGone)
	for {
		select {
		case b := <-c.wreq:
			n, err := c.ch.Write(b)
			c.wres <- writeResult{n, err}
		case r, ok := <-reqs:
			if !ok {
				return
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		case <-c.done:
			return
		}
	}
}

// Read reads what the target sent. Past the read deadline it fails at
// once, data waiting or not.
func (c *routedConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if c.readDeadline.expired() {
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	}
	if len(c.cur.data) == 0 {
		if c.cur.buf != nil {
			putRoutedBuffer(c.cur.buf)
			c.cur = readChunk{}
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case c.cur = <-c.chunks:
		case <-c.readDeadline.wait():
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case <-c.done:
			return 0, c.opError("read", net.ErrClosed)
		}
	}
	n := copy(p, c.cur.data)
	c.cur.data = c.cur.data[n:]
	if len(c.cur.data) == 0 && c.cur.err != nil {
		c.rerr = c.cur.err
		putRoutedBuffer(c.cur.buf)
		c.cur = readChunk{}
		if n == 0 {
			return 0, c.rerr
		}
	}
	return n, nil
}

// Write sends p to the target. It returns once the channel took all of
// p, or at the write deadline or Close with the part handed over so far.
func (c *routedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for {
		if err := c.collect(); err != nil {
			// A piece handed over before the deadline counts as written:
			// it is still sent.
			return written, err
		}
		if len(p) == 0 {
			return written, nil
		}
		if c.closed.Load() {
			return written, c.opError("write", net.ErrClosed)
		}
		if c.writeDeadline.expired() {
			return written, c.opError("write", os.ErrDeadlineExceeded)
		}
		b := getRoutedBuffer(len(p) > smallRoutedBufferSize)
		n := copy(*b, p)
		select {
		case c.wreq <- (*b)[:n]:
		case <-c.writerGone:
			putRoutedBuffer(b)
			return written, c.writeError()
		}
		c.inflight = b
		written += n
		p = p[n:]
	}
}

// collect waits for the result of the piece in flight, if any, bounded by
// the write deadline and Close; a failed write is the error of every
// later one.
func (c *routedConn) collect() error {
	if c.inflight == nil {
		return c.werr
	}
	var r writeResult
	select {
	case r = <-c.wres:
	case <-c.writeDeadline.wait():
		return c.opError("write", os.ErrDeadlineExceeded)
	case <-c.done:
		return c.opError("write", net.ErrClosed)
	case <-c.writerGone:
		select {
		case r = <-c.wres: // written before the writer went
		default:
			c.inflight = nil
			return c.writeError()
		}
	}
	putRoutedBuffer(c.inflight)
	c.inflight = nil
	if r.err != nil && c.werr == nil {
		c.werr = r.err
	}
	return c.werr
}

// writeError is a write's error once the writer goroutine is gone: the
// connection was closed, or the channel was (io.EOF, as the channel's own
// Write reports it).
func (c *routedConn) writeError() error {
	if c.closed.Load() {
		return c.opError("write", net.ErrClosed)
	}
	if c.werr != nil {
		return c.werr
	}
	return io.EOF
}

// CloseWrite ends the writing side (the channel's EOF), after what was
// written: it waits for a piece still in flight, bounded by the write
// deadline.
func (c *routedConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	if c.inflight != nil {
		if err := c.collect(); err != nil {
			return err
		}
	}
	return c.ch.CloseWrite()
}

// Close closes the channel. It fails only when called a second time.
func (c *routedConn) Close() error {
	if c.closed.Swap(true) {
		return c.opError("close", net.ErrClosed)
	}
	close(c.done)
	c.readDeadline.stop()
	c.writeDeadline.stop()
	if err := c.ch.Close(); err != io.EOF {
		return err
	}
	return nil
}

// LocalAddr is the zero address: the connection starts at the controller.
func (c *routedConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the target's address, or the zero address when the
// target was given by name.
func (c *routedConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and the write deadline.
func (c *routedConn) SetDeadline(t time.Time) error {
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the time after which Read fails with
// os.ErrDeadlineExceeded, also a Read already waiting; the zero time
// means none.
func (c *routedConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the time after which Write fails with
// os.ErrDeadlineExceeded, also a Write already waiting; the zero time
// means none.
func (c *routedConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.set(t)
	return nil
}

func (c *routedConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// connDeadline is a deadline that waiters select on: its channel is
// closed once the time has passed, and replaced when the deadline moves.
type connDeadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	gen    uint64        // counts the moves, so that a stale timer does nothing
	passed chan struct{} // closed once the deadline has passed
	ended  bool          // passed is closed
}

func (d *connDeadline) init() { d.passed = make(chan struct{}) }

// set moves the deadline to t; the zero time means none.
func (d *connDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.ended {
		d.passed = make(chan struct{})
		d.ended = false
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.passed)
		d.ended = true
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.ended {
			close(d.passed)
			d.ended = true
		}
	})
}

// wait returns a channel closed once the deadline has passed.
func (d *connDeadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

// expired reports whether the deadline has passed.
func (d *connDeadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}

// stop releases the timer.
func (d *connDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
