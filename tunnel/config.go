package tunnel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Defaults applied by Open to zero fields of Config.
const (
	DefaultKeepAliveInterval = 5 * time.Second
	DefaultDialTimeout       = 15 * time.Second
	DefaultMaxBackoff        = 5 * time.Second
)

// Config describes the SSH connection to the controller and what it carries.
type Config struct {
	// Address is the controller's sshd as host:port, e.g. "203.0.113.5:22".
	Address string
	// User is the SSH login name on the controller.
	User string
	// PrivateKey is a PEM-encoded private key (OpenSSH or PKCS#8, no
	// passphrase). One of PrivateKey, PrivateKeyFile or Agent is required.
	PrivateKey []byte
	// PrivateKeyFile is a path to read PrivateKey from.
	PrivateKeyFile string
	// Agent authenticates with the keys of the SSH agent at $SSH_AUTH_SOCK.
	// The agent answers within the dial's bound (DialTimeout, or the
	// context of Open if it ends sooner) or the dial fails, naming it.
	Agent bool
	// HostKey pins the controller's host key, as an authorized_keys line
	// ("ssh-ed25519 AAAA..."). One of HostKey, KnownHostsFile or
	// InsecureIgnoreHostKey is required.
	HostKey []byte
	// KnownHostsFile is a known_hosts file the controller's key must be in.
	KnownHostsFile string
	// InsecureIgnoreHostKey accepts any host key. It is never the default:
	// without it a missing pin is a configuration error.
	InsecureIgnoreHostKey bool
	// Routes are the prefixes carried over SSH (the private CIDR and the
	// floating range); every other address is dialled directly.
	Routes []netip.Prefix
	// RemoteDomains are DNS domains whose names (the domain itself and
	// every name under it) are resolved by the controller, without a local
	// lookup, e.g. "svc.cluster.local". Other names are looked up locally
	// first and sent to the controller only when they do not resolve.
	RemoteDomains []string
	// KeepAliveInterval is how often the connection is probed; a peer that
	// stops answering is declared dead within three intervals. Default 5s.
	KeepAliveInterval time.Duration
	// DialTimeout bounds the SSH dial and handshake, and dials through the
	// tunnel whose context has no deadline. Default 15s.
	DialTimeout time.Duration
	// MaxBackoff caps the delay between reconnection attempts. Default 5s.
	MaxBackoff time.Duration
	// Logger receives connection events (never keys). Default: discard.
	Logger logr.Logger

	agent *agentAuth
}

// agentAuth signs with the SSH agent at sock.
type agentAuth struct {
	sock string
}

// forHandshake returns the auth method for one handshake. Its use of the
// agent is bounded by ctx: connecting to the agent waits at most until ctx
// ends, and the agent connections it opens are closed when ctx ends, so an
// agent that stops answering fails the listing or signing in flight instead
// of holding the handshake. release closes those connections once the
// handshake is over.
func (a *agentAuth) forHandshake(ctx context.Context) (method ssh.AuthMethod, release func()) {
	var (
		mu     sync.Mutex
		conns  []net.Conn
		stops  []func() bool
		closed bool
	)
	signers := func() ([]ssh.Signer, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", a.sock)
		if err != nil {
			return nil, fmt.Errorf("connecting to the SSH agent at SSH_AUTH_SOCK=%s: %w", a.sock, err)
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			_ = c.Close()
			return nil, fmt.Errorf("connecting to the SSH agent at SSH_AUTH_SOCK=%s: the handshake is over", a.sock)
		}
		conns = append(conns, c)
		stops = append(stops, context.AfterFunc(ctx, func() { _ = c.Close() }))
		mu.Unlock()
		keys, err := agent.NewClient(c).Signers()
		if err != nil {
			if ctx.Err() != nil {
				// The connection was closed because ctx ended.
				err = fmt.Errorf("no answer before the handshake ended: %w", ctx.Err())
			}
			return nil, fmt.Errorf("listing the keys of the SSH agent at SSH_AUTH_SOCK=%s: %w", a.sock, err)
		}
		return keys, nil
	}
	release = func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, stop := range stops {
			stop()
		}
		for _, c := range conns {
			_ = c.Close()
		}
		conns, stops = nil, nil
	}
	return ssh.PublicKeysCallback(signers), release
}

// validate checks cfg, fills defaults and returns the SSH client config
// for the controller. Errors name the field and say how to fix it.
func (cfg *Config) validate() (*ssh.ClientConfig, error) {
	var errs []error
	if cfg.Address == "" {
		errs = append(errs, errors.New("Config.Address is empty: set it to the controller's sshd as host:port, e.g. 203.0.113.5:22"))
	} else if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		errs = append(errs, fmt.Errorf("Config.Address %q is not host:port (%v): add the port, e.g. %s:22", cfg.Address, err, cfg.Address))
	}
	if cfg.User == "" {
		errs = append(errs, errors.New("Config.User is empty: set the SSH login name on the controller"))
	}
	if len(cfg.Routes) == 0 {
		errs = append(errs, errors.New("Config.Routes is empty: add the prefixes to carry over SSH, e.g. 10.0.3.0/24 and 172.24.4.0/24"))
	}
	for i, r := range cfg.Routes {
		if !r.IsValid() {
			errs = append(errs, fmt.Errorf("Config.Routes[%d] is not a valid prefix: use netip.MustParsePrefix(\"10.0.3.0/24\") or similar", i))
			continue
		}
		if r != r.Masked() {
			errs = append(errs, fmt.Errorf("Config.Routes[%d] %s has host bits set: use %s", i, r, r.Masked()))
		}
		for j := 0; j < i; j++ {
			if cfg.Routes[j].IsValid() && r.Overlaps(cfg.Routes[j]) {
				errs = append(errs, fmt.Errorf("Config.Routes[%d] %s overlaps Config.Routes[%d] %s: remove one or make them disjoint", i, r, j, cfg.Routes[j]))
			}
		}
	}
	auth, err := cfg.authMethods()
	if err != nil {
		errs = append(errs, err)
	}
	hostKey, algos, err := cfg.hostKeyCallback()
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.KeepAliveInterval < 0 || cfg.DialTimeout < 0 || cfg.MaxBackoff < 0 {
		errs = append(errs, errors.New("Config.KeepAliveInterval, DialTimeout and MaxBackoff must not be negative: leave them zero for the defaults"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tunnel: invalid configuration: %w", errors.Join(errs...))
	}
	if cfg.KeepAliveInterval == 0 {
		cfg.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	return &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.DialTimeout,
		Config: ssh.Config{
			// AES-GCM first: hardware AES makes it the fastest cipher both
			// sides support (it is also OpenSSH's choice on such machines).
			Ciphers: []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305},
		},
	}, nil
}

func (cfg *Config) authMethods() ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	key, field := cfg.PrivateKey, "Config.PrivateKey"
	if cfg.PrivateKeyFile != "" {
		field = "Config.PrivateKeyFile " + cfg.PrivateKeyFile
		if len(key) > 0 {
			return nil, errors.New("Config.PrivateKey and Config.PrivateKeyFile are both set: keep one")
		}
		b, err := os.ReadFile(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("Config.PrivateKeyFile: %w: check the path and its permissions", err)
		}
		key = b
	}
	if len(key) > 0 {
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, fmt.Errorf("%s: the key is encrypted with a passphrase: load it into an SSH agent and set Config.Agent instead", field)
			}
			// The parser's message never contains key material.
			return nil, fmt.Errorf("%s cannot be parsed (%v): pass a PEM-encoded OpenSSH or PKCS#8 private key", field, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if cfg.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, errors.New("Config.Agent is set but SSH_AUTH_SOCK is empty: start ssh-agent or pass Config.PrivateKey")
		}
		// Added per handshake by Tunnel.dial, bounded by the dial's context.
		cfg.agent = &agentAuth{sock: sock}
	}
	if len(methods) == 0 && cfg.agent == nil {
		return nil, errors.New("no credentials: set Config.PrivateKey, Config.PrivateKeyFile or Config.Agent")
	}
	return methods, nil
}

func (cfg *Config) hostKeyCallback() (ssh.HostKeyCallback, []string, error) {
	n := 0
	for _, set := range []bool{len(cfg.HostKey) > 0, cfg.KnownHostsFile != "", cfg.InsecureIgnoreHostKey} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, nil, errors.New("no host key to check: set Config.HostKey (an authorized_keys line) or Config.KnownHostsFile; Config.InsecureIgnoreHostKey turns checking off explicitly")
	case n > 1:
		return nil, nil, errors.New("Config.HostKey, Config.KnownHostsFile and Config.InsecureIgnoreHostKey are exclusive: keep one")
	case cfg.InsecureIgnoreHostKey:
		return ssh.InsecureIgnoreHostKey(), nil, nil
	case cfg.KnownHostsFile != "":
		cb, err := knownhosts.New(cfg.KnownHostsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("Config.KnownHostsFile: %w: point it at a readable known_hosts file", err)
		}
		algos, err := knownAlgorithms(cb, cfg.Address)
		if err != nil {
			return nil, nil, fmt.Errorf("Config.KnownHostsFile: %w", err)
		}
		return func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := cb(host, remote, key)
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) {
				var want []string
				for _, k := range ke.Want {
					want = append(want, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
				}
				if len(want) == 0 {
					return fmt.Errorf("host key for %s not in %s: server offered %s %s; add it to the file if it is the controller's", host, cfg.KnownHostsFile, key.Type(), ssh.FingerprintSHA256(key))
				}
				return fmt.Errorf("host key mismatch for %s: server offered %s %s, %s expects %v; if the controller was rebuilt, update the file", host, key.Type(), ssh.FingerprintSHA256(key), cfg.KnownHostsFile, want)
			}
			return err
		}, algos, nil
	default:
		pinned, _, _, _, err := ssh.ParseAuthorizedKey(cfg.HostKey)
		if err != nil {
			return nil, nil, fmt.Errorf("Config.HostKey cannot be parsed (%v): pass an authorized_keys line such as \"ssh-ed25519 AAAA...\"", err)
		}
		return PinnedHostKey(pinned), HostKeyAlgorithms(pinned), nil
	}
}

// PinnedHostKey returns a HostKeyCallback that accepts only key; a mismatch
// error carries both SHA256 fingerprints. Use it for Jump hops too, with
// ssh.ClientConfig.HostKeyAlgorithms set to HostKeyAlgorithms(key): a host
// usually has several keys (ECDSA, Ed25519, RSA) and, left to the default
// order, presents whichever the client prefers, not the pinned one.
func PinnedHostKey(key ssh.PublicKey) ssh.HostKeyCallback {
	want := key.Marshal()
	return func(host string, _ net.Addr, got ssh.PublicKey) error {
		if bytes.Equal(got.Marshal(), want) {
			return nil
		}
		return fmt.Errorf("host key mismatch for %s: server offered %s %s, pinned key is %s %s; if the host was rebuilt, update the pinned key",
			host, got.Type(), ssh.FingerprintSHA256(got), key.Type(), ssh.FingerprintSHA256(key))
	}
}

// HostKeyAlgorithms lists the host key algorithms that key signs with, for
// ssh.ClientConfig.HostKeyAlgorithms: the server then presents that key
// rather than another of its keys.
func HostKeyAlgorithms(key ssh.PublicKey) []string {
	return algorithmsFor(key.Type())
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// knownAlgorithms lists the host key algorithms of the keys a known_hosts
// callback holds for address, in the file's order, so the server presents
// one of them; nil when the file knows no key for it (the handshake then
// fails naming the key the server offered).
func knownAlgorithms(cb ssh.HostKeyCallback, address string) ([]string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	remote := &net.TCPAddr{}
	remote.Port, _ = strconv.Atoi(port)
	if ip, err := netip.ParseAddr(host); err == nil {
		remote.IP = ip.AsSlice()
	}
	// A key of no host's: the file answers with the keys it has for address.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(address, remote, probe), &ke) {
		return nil, nil
	}
	var algos []string
	for _, k := range ke.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}
