// Copyright 2026 The stackgate Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

// Tests for stackgate's coalesced writes (see ../patches).

import (
	"crypto/rand"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the network.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// countedHandshakePair is handshakePair with the client's writes counted.
func countedHandshakePair(t *testing.T) (client, server *handshakeTransport, conn *countingConn) {
	t.Helper()
	a, b, err := netPipe()
	if err != nil {
		t.Fatalf("netPipe: %v", err)
	}
	conn = &countingConn{Conn: a}
	clientConf := &ClientConfig{HostKeyCallback: InsecureIgnoreHostKey()}
	clientConf.SetDefaults()
	v := []byte("version")
	client = newClientTransport(newTransport(conn, rand.Reader, true), v, v, clientConf, "addr", a.RemoteAddr())
	serverConf := &ServerConfig{}
	serverConf.AddHostKey(testSigners["ecdsa"])
	serverConf.SetDefaults()
	server = newServerTransport(newTransport(b, rand.Reader, false), v, v, serverConf)
	if err := server.waitSession(); err != nil {
		t.Fatalf("server.waitSession: %v", err)
	}
	if err := client.waitSession(); err != nil {
		t.Fatalf("client.waitSession: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server, conn
}

// readPackets reads n packets on tr, failing the test after a bound.
func readPackets(t *testing.T, tr *handshakeTransport, n int) [][]byte {
	t.Helper()
	got := make(chan [][]byte, 1)
	go func() {
		var ps [][]byte
		for range n {
			p, err := tr.readPacket()
			if err != nil {
				break
			}
			ps = append(ps, p)
		}
		got <- ps
	}()
	select {
	case ps := <-got:
		if len(ps) != n {
			t.Fatalf("read %d packets, want %d", len(ps), n)
		}
		return ps
	case <-time.After(10 * time.Second):
		t.Fatalf("no %d packets within 10s: a written packet was left unflushed", n)
		return nil
	}
}

// TestConcurrentWritesLeaveInOneWrite holds the transport while several
// packets are written at once: they must leave together, in one write to
// the network, and all arrive.
func TestConcurrentWritesLeaveInOneWrite(t *testing.T) {
	client, server, conn := countedHandshakePair(t)
	const writers = 8
	client.mu.Lock()
	before := conn.writes.Load()
	errs := make(chan error, writers)
	for i := range writers {
		go func() { errs <- client.writePacket([]byte{192, byte(i)}) }()
	}
	for deadline := time.Now().Add(10 * time.Second); client.writers.Load() != writers; {
		if time.Now().After(deadline) {
			client.mu.Unlock()
			t.Fatalf("%d of %d writers waiting for the transport after 10s", client.writers.Load(), writers)
		}
		time.Sleep(time.Millisecond)
	}
	client.mu.Unlock()
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("writePacket: %v", err)
		}
	}
	seen := map[byte]bool{}
	for _, p := range readPackets(t, server, writers) {
		if len(p) != 2 || p[0] != 192 {
			t.Fatalf("unexpected packet %x", p)
		}
		seen[p[1]] = true
	}
	if len(seen) != writers {
		t.Fatalf("received packets of %d writers, want %d", len(seen), writers)
	}
	if got := conn.writes.Load() - before; got != 1 {
		t.Errorf("%d packets written at once took %d writes, want 1", writers, got)
	}
}

// TestLoneWriteIsFlushed checks that a packet nobody else writes with
// leaves at once, in a write of its own.
func TestLoneWriteIsFlushed(t *testing.T) {
	client, server, conn := countedHandshakePair(t)
	for i := range 3 {
		before := conn.writes.Load()
		if err := client.writePacket([]byte{192, byte(i)}); err != nil {
			t.Fatalf("writePacket: %v", err)
		}
		if got := conn.writes.Load() - before; got != 1 {
			t.Fatalf("a lone packet took %d writes, want 1", got)
		}
		if p := readPackets(t, server, 1)[0]; len(p) != 2 || p[1] != byte(i) {
			t.Fatalf("received %x, want packet %d", p, i)
		}
	}
}
