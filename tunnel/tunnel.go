package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/crypto/ssh"
)

var (
	// ErrClosed is returned by dials on a closed Tunnel.
	ErrClosed = errors.New("tunnel is closed")
	// ErrConnectionLost is returned by dials that were in flight when the
	// SSH connection to the controller dropped. The tunnel reconnects by
	// itself; a new dial succeeds once the controller answers again.
	ErrConnectionLost = errors.New("SSH connection to the controller was lost")
)

// Tunnel is one SSH connection to the controller, kept alive and re-dialled
// when it drops, that carries connections to the configured routes.
type Tunnel struct {
	cfg    Config
	sshCfg *ssh.ClientConfig
	log    logr.Logger
	direct net.Dialer

	mu      sync.Mutex
	current *sshConn      // nil while reconnecting
	up      chan struct{} // closed when current becomes non-nil
	lastErr error         // why the last connection or dial failed
	closed  bool
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	done    <-chan struct{} // ctx.Done()
	wg      sync.WaitGroup

	// proxy bookkeeping (Serve)
	listeners map[net.Listener]struct{}
	proxied   map[net.Conn]struct{}

	transportOnce sync.Once
	transport     *http.Transport // set once, under mu

	keepalives atomic.Int64 // keepalive probes answered, for the tests
}

// sshConn is one SSH connection; dead is closed once it is gone, with err
// saying why.
type sshConn struct {
	*ssh.Client
	dead chan struct{}

	mu  sync.Mutex
	err error
}

// fail records why c is going away (the first reason wins) and closes it.
func (c *sshConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	_ = c.Close()
}

// reason says why c died; valid once dead is closed.
func (c *sshConn) reason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Open validates cfg, connects to the controller and returns the tunnel.
// The first connection is made before Open returns, so a wrong address, key
// or host key fails here; later drops are repaired in the background.
func Open(ctx context.Context, cfg Config) (*Tunnel, error) {
	sshCfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	t := &Tunnel{
		cfg:       cfg,
		sshCfg:    sshCfg,
		log:       cfg.Logger.WithName("tunnel"),
		direct:    net.Dialer{Timeout: cfg.DialTimeout},
		up:        make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		proxied:   map[net.Conn]struct{}{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.done = t.ctx.Done()
	c, err := t.dial(ctx)
	if err != nil {
		t.cancel()
		return nil, fmt.Errorf("tunnel: connecting to Config.Address %s as %s: %w", cfg.Address, cfg.User, err)
	}
	t.log.Info("connected", "address", cfg.Address, "user", cfg.User, "routes", cfg.Routes)
	t.setUp(c)
	t.wg.Add(1)
	go t.supervise(c)
	return t, nil
}

// dial makes one SSH connection, bounded by ctx and Config.DialTimeout.
func (t *Tunnel) dial(ctx context.Context) (*sshConn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	raw, err := t.direct.DialContext(ctx, "tcp", t.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: check the address and that sshd listens there", err)
	}
	conn := raw
	if tcp, ok := raw.(*net.TCPConn); ok {
		conn = newSSHSocket(tcp)
	}
	sshCfg, release := t.sshCfg, func() {}
	if t.cfg.agent != nil {
		// The agent is asked last, after any key of the configuration.
		var method ssh.AuthMethod
		method, release = t.cfg.agent.forHandshake(ctx)
		withAgent := *t.sshCfg
		withAgent.Auth = append(slices.Clip(withAgent.Auth), method)
		sshCfg = &withAgent
	}
	// The handshake honours ctx: closing the socket (and the agent's
	// connections) aborts it.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, t.cfg.Address, sshCfg)
	release()
	if !stop() {
		switch {
		case err == nil:
			_ = cc.Close()
			err = ctx.Err()
		case !errors.Is(err, ctx.Err()):
			// Keep what the handshake was doing, e.g. waiting for the agent.
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", t.cfg.Address, err)
	}
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	c := &sshConn{Client: ssh.NewClient(cc, chans, reqs), dead: make(chan struct{})}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := c.Wait()
		if err == nil {
			err = errors.New("connection closed")
		}
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
		close(c.dead)
	}()
	return c, nil
}

func (t *Tunnel) setUp(c *sshConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return
	}
	t.current = c
	t.lastErr = nil
	close(t.up)
}

// supervise keeps c alive and replaces it when it dies, until Close.
func (t *Tunnel) supervise(c *sshConn) {
	defer t.wg.Done()
	for {
		t.keepAlive(c)
		<-c.dead
		t.mu.Lock()
		if t.current == c {
			t.current = nil
			t.up = make(chan struct{})
		}
		t.lastErr = c.reason()
		closed := t.closed
		t.mu.Unlock()
		if closed {
			return
		}
		t.log.Info("connection lost; reconnecting", "address", t.cfg.Address, "reason", c.reason().Error())
		if c = t.redial(); c == nil {
			return
		}
		t.log.Info("reconnected", "address", t.cfg.Address)
		t.setUp(c)
	}
}

// keepAlive probes c every interval and closes it when a probe is not
// answered within two intervals, so a silent peer is declared dead within
// three. It returns when c is dead.
func (t *Tunnel) keepAlive(c *sshConn) {
	interval := t.cfg.KeepAliveInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	// One probe at a time: the next is sent only after this one's answer,
	// and an unanswered probe ends the connection, which ends the probe
	// (SendRequest returns once c is closed); reply holds its result, so
	// the probe never blocks.
	reply := make(chan error, 1)
	for {
		select {
		case <-c.dead:
			return
		case <-ticker.C:
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timeout := time.NewTimer(2 * interval)
		select {
		case <-c.dead:
			timeout.Stop()
			return
		case err := <-reply:
			timeout.Stop()
			if err != nil {
				c.fail(fmt.Errorf("keepalive failed: %w", err))
				return
			}
			t.keepalives.Add(1)
		case <-timeout.C:
			c.fail(fmt.Errorf("no answer to keepalive within %s", 2*interval))
			return
		}
	}
}

// redial reconnects with exponential backoff; nil once the tunnel is closed.
func (t *Tunnel) redial() *sshConn {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c, err := t.dial(t.ctx)
		if err == nil {
			return c
		}
		t.mu.Lock()
		t.lastErr = err
		t.mu.Unlock()
		t.log.V(1).Info("reconnect failed", "attempt", attempt, "retryIn", backoff.String(), "error", err.Error())
		if !t.pause(backoff) {
			return nil
		}
		backoff = min(2*backoff, t.cfg.MaxBackoff)
	}
}

// pause waits for d, or until the tunnel is closed; false when it closed.
func (t *Tunnel) pause(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.done:
		return false
	case <-timer.C:
		return true
	}
}

// client waits for a live SSH connection, bounded by ctx.
func (t *Tunnel) client(ctx context.Context) (*sshConn, error) {
	for {
		t.mu.Lock()
		c, up, closed, lastErr := t.current, t.up, t.closed, t.lastErr
		t.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case c != nil:
			return c, nil
		}
		select {
		case <-up:
		case <-t.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the SSH connection to %s to come back: %w (last error: %v)", t.cfg.Address, ctx.Err(), lastErr)
		}
	}
}

// Routed reports whether addr is carried over SSH.
func (t *Tunnel) Routed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, r := range t.cfg.Routes {
		if r.Contains(addr) {
			return true
		}
	}
	return false
}

func (t *Tunnel) remoteName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, d := range t.cfg.RemoteDomains {
		d = strings.Trim(strings.ToLower(d), ".")
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// DialContext connects to addr. Addresses inside Config.Routes are reached
// through the controller over SSH, everything else directly. Names under
// Config.RemoteDomains go to the controller as names; any other name is
// resolved locally first; a name that does not resolve locally is sent to
// the controller, which resolves it (as socks5h does). Only "tcp", "tcp4"
// and "tcp6" are supported through the tunnel.
func (t *Tunnel) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tunnel: dial %s: %w", addr, err)
	}
	targetHost := host // the address the controller dials: host, or an address host resolves to here
	routed := false
	if ip, err := netip.ParseAddr(host); err == nil {
		routed = t.Routed(ip)
	} else if t.remoteName(host) {
		routed = true
	} else {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		var dnsErr *net.DNSError
		switch {
		case lerr == nil:
			for _, ip := range ips {
				if t.Routed(ip) {
					routed, targetHost = true, ip.Unmap().String()
					break
				}
			}
		case errors.As(lerr, &dnsErr) && dnsErr.IsNotFound:
			routed = true // the controller may know it
		default:
			return nil, fmt.Errorf("tunnel: dial %s: %w", addr, lerr)
		}
	}
	if !routed {
		return t.dialDirect(ctx, network, addr)
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("tunnel: dial %s %s: only tcp is carried over SSH", network, addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		// A service name ("https") is looked up here: the SSH channel
		// carries a port number.
		n, lerr := net.DefaultResolver.LookupPort(ctx, network, port)
		if lerr != nil {
			return nil, fmt.Errorf("tunnel: dial %s: the port must be a number from 0 to 65535 or a known service name: %w", addr, lerr)
		}
		port = strconv.Itoa(n)
	}
	target := net.JoinHostPort(targetHost, port)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.DialTimeout)
		defer cancel()
	}
	c, err := t.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("tunnel: dial %s: %w", addr, err)
	}
	conn, err := dialRouted(ctx, c.Client, target)
	if err == nil {
		return conn, nil
	}
	var refused *ssh.OpenChannelError
	switch {
	case errors.As(err, &refused):
		return nil, fmt.Errorf("tunnel: dial %s: the controller %s could not connect: %w", addr, t.cfg.Address, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("tunnel: dial %s through %s: %w", addr, t.cfg.Address, ctx.Err())
	}
	// Any other failure means the SSH connection broke under the dial; wait
	// (boundedly) for it to be reported so the error says why.
	timer := time.NewTimer(t.cfg.KeepAliveInterval)
	defer timer.Stop()
	select {
	case <-c.dead:
		return nil, fmt.Errorf("tunnel: dial %s: %w while the channel was opening (%v); the tunnel reconnects by itself, retry the dial", addr, ErrConnectionLost, c.reason())
	case <-t.done:
		return nil, fmt.Errorf("tunnel: dial %s: %w", addr, ErrClosed)
	case <-timer.C:
		return nil, fmt.Errorf("tunnel: dial %s through %s: %w", addr, t.cfg.Address, err)
	}
}

// dialDirect dials addr without the tunnel; Close ends it too.
func (t *Tunnel) dialDirect(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case <-t.done:
		return nil, fmt.Errorf("tunnel: dial %s: %w", addr, ErrClosed)
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel)
	defer stop()
	conn, err := t.direct.DialContext(ctx, network, addr)
	if err != nil && t.ctx.Err() != nil {
		return nil, fmt.Errorf("tunnel: dial %s: %w", addr, ErrClosed)
	}
	return conn, err
}

// Close stops the tunnel: the SSH connection, every Serve listener and
// proxied connection, and the shared HTTP transport's idle connections.
// Dials in flight fail with ErrClosed or ErrConnectionLost. It returns once
// every goroutine the tunnel started has finished, and may be called twice.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	c := t.current
	t.current = nil
	var closers []interface{ Close() error }
	for l := range t.listeners {
		closers = append(closers, l)
	}
	for p := range t.proxied {
		closers = append(closers, p)
	}
	transport := t.transport
	t.mu.Unlock()
	var errs []error
	if c != nil {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, cl := range closers {
		_ = cl.Close()
	}
	if transport != nil {
		transport.CloseIdleConnections()
	}
	t.wg.Wait()
	t.mu.Lock()
	transport = t.transport
	t.mu.Unlock()
	if transport != nil {
		transport.CloseIdleConnections()
	}
	t.log.Info("closed", "address", t.cfg.Address)
	return errors.Join(errs...)
}
