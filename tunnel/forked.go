package tunnel

import (
	"fmt"
	"io"
	"net"

	"golang.org/x/crypto/ssh"

	sshfork "github.com/stackgate/stackgate/internal/forked/crypto/ssh"
)

// The connection to the controller carries every routed byte, so it uses
// internal/forked/crypto/ssh: golang.org/x/crypto/ssh with patches for
// bulk transfers (received packets are pooled, window adjusts are sent at
// half the window) and for bursts of connections (concurrent packets leave
// in one write, a dial starts no goroutines). The public API keeps
// x/crypto/ssh's types: host-key callbacks and agent signers are adapted
// here, and Jump's hops use x/crypto/ssh itself.

// forkHostKeyCallback checks the controller's key with an x/crypto/ssh
// callback (PinnedHostKey, knownhosts).
func forkHostKeyCallback(cb ssh.HostKeyCallback) sshfork.HostKeyCallback {
	return func(host string, remote net.Addr, key sshfork.PublicKey) error {
		k, err := ssh.ParsePublicKey(key.Marshal())
		if err != nil {
			return fmt.Errorf("host key of %s: %w", host, err)
		}
		return cb(host, remote, k)
	}
}

// forkSigner signs for the forked client with an x/crypto/ssh signer (an
// SSH agent's key); the agent never hands out the private key itself.
type forkSigner struct {
	s   ssh.Signer
	pub sshfork.PublicKey
}

// forkAlgorithmSigner also chooses the signature algorithm (rsa-sha2-*).
type forkAlgorithmSigner struct {
	forkSigner
	as ssh.AlgorithmSigner
}

// forkMultiAlgorithmSigner also restricts the algorithms.
type forkMultiAlgorithmSigner struct {
	forkAlgorithmSigner
	algorithms []string
}

func newForkSigner(s ssh.Signer) (sshfork.Signer, error) {
	pub, err := sshfork.ParsePublicKey(s.PublicKey().Marshal())
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", s.PublicKey().Type(), err)
	}
	fs := forkSigner{s: s, pub: pub}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return fs, nil
	}
	fas := forkAlgorithmSigner{forkSigner: fs, as: as}
	if ms, ok := s.(ssh.MultiAlgorithmSigner); ok {
		return forkMultiAlgorithmSigner{forkAlgorithmSigner: fas, algorithms: ms.Algorithms()}, nil
	}
	return fas, nil
}

func (f forkSigner) PublicKey() sshfork.PublicKey { return f.pub }

func (f forkSigner) Sign(rand io.Reader, data []byte) (*sshfork.Signature, error) {
	sig, err := f.s.Sign(rand, data)
	if err != nil {
		return nil, fmt.Errorf("signing with the SSH agent's %s key: %w", f.pub.Type(), err)
	}
	return forkSignature(sig), nil
}

func (f forkAlgorithmSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*sshfork.Signature, error) {
	sig, err := f.as.SignWithAlgorithm(rand, data, algorithm)
	if err != nil {
		return nil, fmt.Errorf("signing with the SSH agent's %s key (%s): %w", f.pub.Type(), algorithm, err)
	}
	return forkSignature(sig), nil
}

func (f forkMultiAlgorithmSigner) Algorithms() []string { return f.algorithms }

func forkSignature(sig *ssh.Signature) *sshfork.Signature {
	return &sshfork.Signature{Format: sig.Format, Blob: sig.Blob, Rest: sig.Rest}
}
