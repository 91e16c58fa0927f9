// Package tunnel is an in-process SSH tunnel that replaces sshuttle: one
// SSH connection to a controller carries connections to a few routed
// prefixes (a private CIDR, a floating-IP range); everything else is dialled
// directly.
//
//	t, err := tunnel.Open(ctx, tunnel.Config{
//		Address:    "203.0.113.5:22",
//		User:       "stack",
//		PrivateKey: keyPEM,
//		HostKey:    []byte("ssh-ed25519 AAAA..."),
//		Routes:     []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24"), netip.MustParsePrefix("172.24.4.0/24")},
//	})
//	if err != nil { ... }
//	defer t.Close()
//	resp, err := t.HTTPClient().Get("http://10.0.3.15/identity/v3")
//
// The host key is always checked (a pinned key or a known_hosts file) unless
// Config.InsecureIgnoreHostKey says otherwise. The connection is probed with
// keepalives and re-dialled with backoff when it drops; dials in flight then
// fail with ErrConnectionLost and new dials wait for the new connection.
//
// DialContext plugs into net/http (Transport, HTTPClient) and into
// x/crypto/ssh (Jump reaches a bastion and, from it, a node behind it).
// A connection carried over SSH takes deadlines as a TCP connection does:
// past its read deadline a Read fails with os.ErrDeadlineExceeded (a
// net.Error whose Timeout is true), and so does a Write waiting for the
// target to take more data. What a Write handed over before its deadline
// is counted as written and still sent, as a TCP socket sends what its
// buffer took. Its Close, too,
// is TCP's: it succeeds after the target closed first, and a second Close
// fails with net.ErrClosed.
//
// Serve offers the same routing to other processes as a SOCKS5 and HTTP
// proxy on one port; Env gives the variables that point them at it.
//
// The SOCKS5 side is a small implementation of RFC 1928's CONNECT in this
// package: golang.org/x/net/proxy only has a client, the maintained server
// library github.com/things-go/go-socks5 is not served by the Go module
// proxy this project builds with, and github.com/armon/go-socks5 has been
// unmaintained since 2016. CONNECT is all kind, kubectl, curl and the
// openstack CLI use.
//
// The connection to the controller is golang.org/x/crypto/ssh as
// released. A routed connection wraps the SSH channel (routed.go) with
// what a TCP connection has and the channel lacks: read and write
// deadlines, and a Close that succeeds after the target closed first and
// fails with net.ErrClosed the second time. Every public type is
// x/crypto/ssh's.
//
// Speed: the SSH socket is read through a 256 KiB buffer and, on Linux,
// TCP_QUICKACK is re-armed after every read, which removes the ~40 ms
// stall per new connection that delayed ACKs meet with Nagle's algorithm
// on sshd's side; proxied connections are copied
// with a 32 KiB buffer that grows to 256 KiB once a read fills it, so
// bursts of short connections stay cheap and bulk transfers move in large
// writes. A proxied connection closes its channel with CLOSE alone once
// both directions have ended, one packet fewer than EOF then CLOSE.
package tunnel
