// Copyright 2026 The stackgate Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

// Tests for stackgate's direct-tcpip dials without helper goroutines (see
// ../patches).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"
)

// dialPair is a client and the direct-tcpip channels its server accepts;
// hold, when not nil, delays every acceptance until it is closed.
func dialPair(t *testing.T, hold chan struct{}) (*Client, <-chan Channel) {
	t.Helper()
	c1, c2, err := netPipe()
	if err != nil {
		t.Fatalf("netPipe: %v", err)
	}
	serverConf := &ServerConfig{NoClientAuth: true}
	serverConf.AddHostKey(testSigners["ecdsa"])
	accepted := make(chan Channel, 64)
	serverErr := make(chan error, 1)
	go func() {
		_, chans, reqs, err := NewServerConn(c1, serverConf)
		if err != nil {
			serverErr <- err
			return
		}
		close(serverErr)
		go DiscardRequests(reqs)
		for nc := range chans {
			if hold != nil {
				<-hold
			}
			ch, _, err := nc.Accept()
			if err != nil {
				t.Errorf("accept: %v", err)
				continue
			}
			accepted <- ch
		}
	}()
	conn, chans, reqs, err := NewClientConn(c2, "", &ClientConfig{HostKeyCallback: InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatalf("NewClientConn: %v", err)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("NewServerConn: %v", err)
	}
	client := NewClient(conn, chans, reqs)
	t.Cleanup(func() {
		client.Close()
		c1.Close()
	})
	return client, accepted
}

func next(t *testing.T, accepted <-chan Channel) Channel {
	t.Helper()
	select {
	case ch := <-accepted:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatal("the server accepted no channel within 10s")
		return nil
	}
}

// TestDialNeedsNoHelperGoroutines dials many connections: upstream starts
// two goroutines for each (to drain requests and stderr); the patched
// client starts none, and the connections carry data both ways.
func TestDialNeedsNoHelperGoroutines(t *testing.T) {
	client, accepted := dialPair(t, nil)
	const dials = 20
	before := runtime.NumGoroutine()
	for i := range dials {
		conn, err := client.DialContext(context.Background(), "tcp", "10.0.3.10:80")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer conn.Close()
		server := next(t, accepted)
		defer server.Close()
		if _, err := conn.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("dial %d: write: %v", i, err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(server, b); err != nil || b[0] != byte(i) {
			t.Fatalf("dial %d: the server read %x, %v", i, b, err)
		}
		if _, err := server.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("dial %d: server write: %v", i, err)
		}
		if _, err := io.ReadFull(conn, b); err != nil || b[0] != byte(i) {
			t.Fatalf("dial %d: the client read %x, %v", i, b, err)
		}
	}
	if grown := runtime.NumGoroutine() - before; grown >= dials {
		t.Errorf("%d open dials added %d goroutines, want fewer than one per dial", dials, grown)
	}
}

// TestDialRefusesRequestsAndDropsStderr has the server send a channel
// request and more stderr data than a window holds: the request is
// refused, the stderr data dropped with its window given back, and the
// channel's data still arrives.
func TestDialRefusesRequestsAndDropsStderr(t *testing.T) {
	client, accepted := dialPair(t, nil)
	conn, err := client.Dial("tcp", "10.0.3.10:80")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	server := next(t, accepted)
	defer server.Close()

	ok, err := server.SendRequest("test@stackgate", true, nil)
	if err != nil || ok {
		t.Fatalf("the client answered a channel request with %v, %v; want a refusal", ok, err)
	}
	stderrDone := make(chan error, 1)
	go func() {
		_, err := server.Stderr().Write(make([]byte, channelWindowSize+channelMaxPacket))
		if err == nil {
			_, err = server.Write([]byte("data"))
		}
		stderrDone <- err
	}()
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 4)
		n, _ := io.ReadFull(conn, b)
		got <- b[:n]
	}()
	select {
	case b := <-got:
		if !bytes.Equal(b, []byte("data")) {
			t.Fatalf("read %q after the stderr data, want %q", b, "data")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no channel data within 10s: the stderr data's window was not given back")
	}
	if err := <-stderrDone; err != nil {
		t.Fatalf("server writes: %v", err)
	}
}

// TestDialContextStopsWaiting dials a server that is slow to accept: the
// dial returns when its context ends, and the channel the server accepts
// later is closed.
func TestDialContextStopsWaiting(t *testing.T) {
	hold := make(chan struct{})
	client, accepted := dialPair(t, hold)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() {
		conn, err := client.DialContext(ctx, "tcp", "10.0.3.10:80")
		if conn != nil {
			conn.Close()
		}
		returned <- err
	}()
	select {
	case err := <-returned:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial returned %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(10 * time.Second):
		close(hold)
		t.Fatal("the dial did not return within 10s of its context's end")
	}
	close(hold)
	server := next(t, accepted)
	read := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case err := <-read:
		if err != io.EOF {
			t.Fatalf("the late channel read %v, want io.EOF (closed by the client)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the channel accepted after the dial gave up was not closed within 10s")
	}
}
