// Copyright 2026 The stackgate Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

// Tests for stackgate's deadlines on direct-tcpip connections (see
// ../patches).

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// expectTimeout fails unless err is a deadline's: os.ErrDeadlineExceeded,
// a net.Error that says Timeout.
func expectTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: got %v, want a timeout (os.ErrDeadlineExceeded)", what, err)
	}
}

// dialedConn is a dialled connection and the server's side of its channel,
// both closed when the test ends.
func dialedConn(t *testing.T) (net.Conn, Channel) {
	t.Helper()
	client, accepted := dialPair(t, nil)
	conn, err := client.DialContext(context.Background(), "tcp", "10.0.3.10:80")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	server := next(t, accepted)
	t.Cleanup(func() { server.Close() })
	return conn, server
}

// TestDialedConnReadDeadline: a Read waiting for data ends at the read
// deadline; one past it fails at once, data waiting or not; a later
// deadline or none lets the connection read again, nothing lost.
func TestDialedConnReadDeadline(t *testing.T) {
	conn, server := dialedConn(t)

	if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	b := make([]byte, 8)
	done := make(chan error, 1)
	go func() { _, err := conn.Read(b); done <- err }()
	select {
	case err := <-done:
		expectTimeout(t, "Read waiting for data", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Read still waiting 10s after its 100ms deadline")
	}

	if _, err := server.Write([]byte("data")); err != nil {
		t.Fatalf("server write: %v", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("SetReadDeadline in the past: %v", err)
	}
	_, err := conn.Read(b)
	expectTimeout(t, "Read past the deadline", err)

	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("SetReadDeadline(zero): %v", err)
	}
	if _, err := io.ReadFull(conn, b[:4]); err != nil || string(b[:4]) != "data" {
		t.Fatalf("read after clearing the deadline: %q, %v; want \"data\"", b[:4], err)
	}
}

// TestDialedConnWriteDeadline: a Write waiting for a peer that does not
// read (its window used up) ends at the write deadline, with what was sent
// counted; clearing it lets the writes go on once the peer reads.
func TestDialedConnWriteDeadline(t *testing.T) {
	conn, server := dialedConn(t)

	big := make([]byte, 4*channelWindowSize)
	// Long enough that the writer surely sends the window before it ends.
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() { n, err := conn.Write(big); done <- result{n, err} }()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write still waiting 10s after its 1s deadline")
	}
	expectTimeout(t, "Write to a peer that does not read", r.err)
	if r.n <= 0 || r.n >= len(big) {
		t.Fatalf("Write wrote %d of %d bytes before the deadline, want some but not all", r.n, len(big))
	}

	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatalf("SetWriteDeadline(zero): %v", err)
	}
	got := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, server); got <- n }()
	if _, err := conn.Write([]byte("more")); err != nil {
		t.Fatalf("write after clearing the deadline: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case n := <-got:
		if want := int64(r.n + 4); n != want {
			t.Fatalf("the server read %d bytes, want %d (the timed-out write's part and 4)", n, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server's read did not end within 10s of the close")
	}
}
