// Copyright 2026 The stackgate Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

// Tests for stackgate's Close of direct-tcpip connections (see
// ../patches).

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// expectClosedTwice fails unless a second Close of conn fails with
// net.ErrClosed, as a TCP connection's does.
func expectClosedTwice(t *testing.T, conn net.Conn) {
	t.Helper()
	if err := conn.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// TestDialedConnCloseAfterPeer: a connection whose peer closed the channel
// first closes without an error, as a TCP connection does.
func TestDialedConnCloseAfterPeer(t *testing.T) {
	conn, server := dialedConn(t)
	if err := server.Close(); err != nil {
		t.Fatalf("server close: %v", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after the peer's close: %d bytes, %v; want io.EOF", n, err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("Close after the peer's close: %v, want nil", err)
	}
	expectClosedTwice(t, conn)
}

// TestDialedConnCloseFirst: closing first succeeds and the peer sees the
// channel end; a second Close fails.
func TestDialedConnCloseFirst(t *testing.T) {
	conn, server := dialedConn(t)
	if err := conn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := server.Read(make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("the peer's Read after Close: %v, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the peer still reading 10s after Close")
	}
	expectClosedTwice(t, conn)
}
