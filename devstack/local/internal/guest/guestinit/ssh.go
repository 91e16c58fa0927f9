//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// serveSSH serves SSH on port 22 until the listener fails: public key
// authentication of the given users with the authorized keys, sessions
// (exec and shell through /bin/sh, as root) and direct-tcpip, so that the
// guest serves as a bastion.
func serveSSH(signers []ssh.Signer, users map[string]bool, authorized []ssh.PublicKey) error {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if !users[c.User()] {
				return nil, fmt.Errorf("no user %q", c.User())
			}
			for _, k := range authorized {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("key not authorized")
		},
	}
	for _, s := range signers {
		cfg.AddHostKey(s)
	}
	l, err := net.Listen("tcp", ":22")
	if err != nil {
		return err
	}
	logf("ssh listening on :22")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go serveConn(c, cfg)
	}
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		_ = c.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	// What OpenSSH's sshd gives every session: client address and port,
	// server address and port.
	conn := []string{"SSH_CONNECTION=" + hostPort(sc.RemoteAddr()) + " " + hostPort(sc.LocalAddr()), "SSH_CLIENT=" + hostPort(sc.RemoteAddr()) + " 22"}
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go serveSession(ch, creqs, conn)
		case "direct-tcpip":
			go serveDirect(nc)
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "not supported")
		}
	}
}

// serveDirect connects a direct-tcpip channel (ssh -J, -W, -L) to its target.
func serveDirect(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	target, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = target.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(target, ch)
		if tc, ok := target.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(ch, target)
		_ = ch.CloseWrite()
	}()
	wg.Wait()
	_ = ch.Close()
	_ = target.Close()
}

// serveSession runs one exec or shell request of a session channel.
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, conn []string) {
	defer ch.Close()
	env := append([]string(nil), conn...)
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			_ = req.Reply(true, nil)
		case "pty-req", "window-change":
			// No terminal: a shell runs on pipes, which is what scripted
			// clients need.
			_ = req.Reply(true, nil)
		case "exec", "shell":
			var argv []string
			if req.Type == "exec" {
				var p struct{ Command string }
				if ssh.Unmarshal(req.Payload, &p) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				argv = []string{"/bin/sh", "-c", p.Command}
			} else {
				argv = []string{"/bin/sh", "-i"}
			}
			_ = req.Reply(true, nil)
			status := run(ch, argv, env)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// run runs argv with the channel as its standard streams and returns its
// exit status.
func run(ch ssh.Channel, argv, env []string) uint32 {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "USER=root"}, env...)
	cmd.Dir = "/root"
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 255
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "%v\n", err)
		return 127
	}
	// Not waited for: a client that never closes its input must not hold
	// the session open after the command ended.
	go func() {
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.ExitCode() >= 0 {
			return uint32(ee.ExitCode())
		}
		return 255
	default:
		return 255
	}
}

// hostPort is an address as "host port", as SSH_CONNECTION spells it.
func hostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host + " " + port
}
