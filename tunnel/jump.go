package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Client is an SSH client to a host behind the tunnel (a bastion, or a
// node behind the bastion). The embedded *ssh.Client offers sessions and
// dials through that host.
type Client struct {
	*ssh.Client
	addr string
}

// RunResult is what a command left behind.
type RunResult struct {
	// Stdout and Stderr are the command's output streams.
	Stdout, Stderr []byte
	// ExitStatus is the command's exit status (0 on success).
	ExitStatus int
}

// Jump opens an SSH connection to addr (host:port inside the routes)
// through the tunnel, with its own user, auth, host-key policy and timeout
// in cfg. cfg.Timeout bounds the dial and handshake, as ctx does.
func (t *Tunnel) Jump(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*Client, error) {
	if err := checkJumpConfig(addr, cfg); err != nil {
		return nil, err
	}
	ctx, cancel := jumpContext(ctx, cfg)
	defer cancel()
	conn, err := t.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("jump to %s: %w", addr, err)
	}
	return handshake(ctx, conn, addr, cfg)
}

// Jump opens an SSH connection to addr as seen from c's host (the second
// hop), with its own cfg.
func (c *Client) Jump(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*Client, error) {
	if err := checkJumpConfig(addr, cfg); err != nil {
		return nil, err
	}
	ctx, cancel := jumpContext(ctx, cfg)
	defer cancel()
	conn, err := c.Client.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("jump from %s to %s: %w", c.addr, addr, err)
	}
	return handshake(ctx, conn, addr, cfg)
}

func checkJumpConfig(addr string, cfg *ssh.ClientConfig) error {
	if cfg == nil {
		return fmt.Errorf("jump to %s: ssh.ClientConfig is nil: pass one with User, Auth and HostKeyCallback", addr)
	}
	if cfg.HostKeyCallback == nil {
		return fmt.Errorf("jump to %s: ssh.ClientConfig.HostKeyCallback is nil: pin the host key with tunnel.PinnedHostKey, or use ssh.InsecureIgnoreHostKey explicitly", addr)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("jump to %q: %w: use host:port", addr, err)
	}
	return nil
}

func jumpContext(ctx context.Context, cfg *ssh.ClientConfig) (context.Context, context.CancelFunc) {
	if cfg.Timeout > 0 {
		return context.WithTimeout(ctx, cfg.Timeout)
	}
	return context.WithCancel(ctx)
}

func handshake(ctx context.Context, conn net.Conn, addr string, cfg *ssh.ClientConfig) (*Client, error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			_ = cc.Close()
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	return &Client{Client: ssh.NewClient(cc, chans, reqs), addr: addr}, nil
}

// Run runs cmd in a new session and returns its output and exit status. A
// non-zero exit status is not an error. When ctx ends first the command is
// sent SIGKILL, the session is closed and ctx's error is returned.
func (c *Client) Run(ctx context.Context, cmd string) (RunResult, error) {
	var res RunResult
	s, err := c.NewSession()
	if err != nil {
		return res, fmt.Errorf("run on %s: opening a session: %w", c.addr, err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Start(cmd); err != nil {
		return res, fmt.Errorf("run on %s: starting %s: %w", c.addr, commandName(cmd), err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		_ = s.Close()
		return res, fmt.Errorf("run on %s: %s: %w", c.addr, commandName(cmd), ctx.Err())
	}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		res.ExitStatus = exit.ExitStatus()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("run on %s: %s: %w", c.addr, commandName(cmd), err)
	}
	return res, nil
}

// commandName names cmd in errors by its first word alone: the rest of a
// command line may carry a password or a token.
func commandName(cmd string) string {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 0:
		return "an empty command"
	case len(f) == 1:
		return strconv.Quote(f[0])
	}
	return strconv.Quote(f[0] + " …")
}
