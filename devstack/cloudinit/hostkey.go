package cloudinit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostKey is the ed25519 SSH host key a node gets through cloud-init's
// ssh_keys, generated here so the tunnel can pin it before the node exists.
// The private half prints as Redacted (with any fmt verb); String shows the
// fingerprint.
type HostKey struct {
	pemBytes []byte
	public   ssh.PublicKey
}

// NewHostKey generates an ed25519 host key.
func NewHostKey() (HostKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return HostKey{}, fmt.Errorf("generating ed25519 host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return HostKey{}, fmt.Errorf("encoding ed25519 host key: %w", err)
	}
	return ParseHostKey(pem.EncodeToMemory(block))
}

// ParseHostKey reads an unencrypted ed25519 private key in OpenSSH PEM format
// ("-----BEGIN OPENSSH PRIVATE KEY-----"), as ssh-keygen -t ed25519 -N ""
// writes it and PrivateKeyPEM returns it. The error never holds key material.
func ParseHostKey(pemBytes []byte) (HostKey, error) {
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return HostKey{}, errors.New("host key is encrypted; give an unencrypted key (ssh-keygen -t ed25519 -N '')")
		}
		return HostKey{}, errors.New("host key is not an OpenSSH private key in PEM format; create one with cloudinit.NewHostKey or ssh-keygen -t ed25519 -N ''")
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		priv = k
	case *ed25519.PrivateKey:
		priv = *k
	default:
		return HostKey{}, fmt.Errorf("host key is a %T, not ed25519; create one with cloudinit.NewHostKey or ssh-keygen -t ed25519 -N ''", raw)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return HostKey{}, fmt.Errorf("deriving the host key's public key: %w", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "OPENSSH PRIVATE KEY" {
		return HostKey{}, errors.New("host key is not in OpenSSH format (BEGIN OPENSSH PRIVATE KEY), which cloud-init's ssh_keys needs; convert it with ssh-keygen -p -f FILE")
	}
	return HostKey{pemBytes: pem.EncodeToMemory(block), public: pub}, nil
}

// IsZero reports whether k holds no key.
func (k HostKey) IsZero() bool { return k.public == nil }

// PublicKey returns the public half, for ssh.FixedHostKey.
func (k HostKey) PublicKey() ssh.PublicKey { return k.public }

// AuthorizedKey returns the public half in authorized_keys format
// ("ssh-ed25519 AAAA..."), without a newline: what devstack.SSHEndpoint.HostKey
// and the tunnel's HostKey take.
func (k HostKey) AuthorizedKey() string {
	if k.public == nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.public)))
}

// PrivateKeyPEM returns the private half in OpenSSH PEM format. It is a
// secret: never log it or write it to artifacts.
func (k HostKey) PrivateKeyPEM() []byte { return bytes.Clone(k.pemBytes) }

// String returns the key's type and SHA256 fingerprint.
func (k HostKey) String() string {
	if k.public == nil {
		return "ed25519 host key <none>"
	}
	return "ed25519 host key " + ssh.FingerprintSHA256(k.public)
}

// GoString returns String, so %#v shows no key material either.
func (k HostKey) GoString() string { return k.String() }

// Format writes String whatever the verb.
func (k HostKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// MarshalText returns the public key in authorized_keys format, never the private half.
func (k HostKey) MarshalText() ([]byte, error) { return []byte(k.AuthorizedKey()), nil }
