//go:build linux

package local

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshKeys returns the controller's host key and the user's key, creating
// them (ed25519, files 0600 in the state directory) on first use.
func (h *Host) sshKeys() (hostKey ssh.PublicKey, userPEM []byte, err error) {
	dir := h.path("ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	load := func(name, comment string) (ssh.Signer, []byte, error) {
		p := h.path("ssh", name)
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			_, priv, gerr := ed25519.GenerateKey(rand.Reader)
			if gerr != nil {
				return nil, nil, gerr
			}
			blk, merr := ssh.MarshalPrivateKey(priv, comment)
			if merr != nil {
				return nil, nil, merr
			}
			b = pem.EncodeToMemory(blk)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return nil, nil, err
			}
		} else if err != nil {
			return nil, nil, err
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", p, err)
		}
		return s, b, nil
	}
	hostSigner, _, err := load("ssh_host_ed25519_key", "stackgate controller host key")
	if err != nil {
		return nil, nil, fmt.Errorf("ssh host key: %w", err)
	}
	userSigner, userPEM, err := load("id_ed25519", "stackgate user key")
	if err != nil {
		return nil, nil, fmt.Errorf("ssh user key: %w", err)
	}
	auth := ssh.MarshalAuthorizedKey(userSigner.PublicKey())
	if err := os.WriteFile(h.path("ssh", "authorized_keys"), auth, 0o600); err != nil {
		return nil, nil, err
	}
	return hostSigner.PublicKey(), userPEM, nil
}

// startSSHD runs Debian's sshd in the controller namespace on the public
// address and waits until it accepts connections from the root namespace.
func (h *Host) startSSHD(ctx context.Context) error {
	n := h.names()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return fmt.Errorf("sshd: /usr/sbin/sshd not found; install openssh-server")
	}
	if _, err := h.run(ctx, "sshd-check", "", nil, "", "/usr/sbin/sshd", "-t", "-f", h.path("etc", "sshd_config")); err != nil {
		return err
	}
	if err := h.start(service{name: "sshd", ns: n.controller, args: []string{"/usr/sbin/sshd", "-D", "-e", "-f", h.path("etc", "sshd_config")}}); err != nil {
		return err
	}
	addr := net.JoinHostPort(n.publicCtl.String(), "22")
	return poll(ctx, "sshd on "+addr, 20*time.Second, func() error { return h.checkAlive("sshd") }, func(ctx context.Context) (bool, string) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// ensureSSHD restarts sshd if its process is gone, so a lost sshd does not
// cost the whole environment.
func (h *Host) ensureSSHD(ctx context.Context) error {
	if _, ok := h.pidOf("sshd"); ok {
		return nil
	}
	h.log.Info("sshd is not running; restarting it", "instance", h.instance)
	return h.startSSHD(ctx)
}
