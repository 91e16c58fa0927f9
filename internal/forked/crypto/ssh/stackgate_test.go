// Copyright 2026 The stackgate Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

// Tests for stackgate's patches (see ../patches).

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// TestWindowAdjustAtHalfWindow checks that a reader sends no window adjust
// while less than half the window is used, and grants the window again once
// more than half is.
func TestWindowAdjustAtHalfWindow(t *testing.T) {
	reader, writer, mux := channelPair(t)
	defer reader.Close()
	defer writer.Close()
	defer mux.Close()

	window := func() (window, consumed uint32) {
		reader.windowMu.Lock()
		defer reader.windowMu.Unlock()
		return reader.myWindow, reader.myConsumed
	}
	transfer := func(n int) {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := writer.Write(make([]byte, n))
			errc <- err
		}()
		if _, err := io.ReadFull(reader, make([]byte, n)); err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("writing %d bytes: %v", n, err)
		}
	}

	// Upstream adjusts after three packets; the patched channel waits.
	transfer(4 * channelMaxPacket)
	if got, _ := window(); got != channelWindowSize-4*channelMaxPacket {
		t.Fatalf("window after %d bytes read: %d, want %d (no adjust before half the window is used)", 4*channelMaxPacket, got, channelWindowSize-4*channelMaxPacket)
	}
	transfer(channelWindowSize / 2)
	got, consumed := window()
	if got <= channelWindowSize/2 {
		t.Fatalf("window after more than half of it was read: %d, want more than half of %d (an adjust sent)", got, channelWindowSize)
	}
	if got+consumed != channelWindowSize {
		t.Fatalf("window %d plus consumed-but-not-granted %d is %d, want %d", got, consumed, got+consumed, channelWindowSize)
	}
}

// TestPooledPacketsKeepData moves distinct data over several channels of
// one real connection at once and reads it back in odd-sized pieces: a
// packet released to the pool while still unread would corrupt a stream.
// It also checks that the pool takes away upstream's allocation of every
// received packet.
func TestPooledPacketsKeepData(t *testing.T) {
	const (
		channels = 6
		size     = 8 << 20
	)
	c1, c2, err := netPipe()
	if err != nil {
		t.Fatalf("netPipe: %v", err)
	}
	defer c1.Close()
	defer c2.Close()

	serverConf := &ServerConfig{NoClientAuth: true}
	serverConf.AddHostKey(testSigners["ecdsa"])
	serverErr := make(chan error, 1)
	var wg sync.WaitGroup
	go func() {
		_, chans, reqs, err := NewServerConn(c1, serverConf)
		if err != nil {
			serverErr <- err
			return
		}
		close(serverErr)
		go DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				t.Errorf("accept: %v", err)
				continue
			}
			go DiscardRequests(creqs)
			seed := nc.ExtraData()[0]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ch.Close()
				if _, err := io.Copy(ch, io.LimitReader(streamOf(seed), size)); err != nil {
					t.Errorf("channel %d: writing: %v", seed, err)
				}
			}()
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
	defer client.Close()

	want := make([][sha256.Size]byte, channels)
	for i := range channels {
		h := sha256.New()
		io.Copy(h, io.LimitReader(streamOf(byte(i)), size))
		copy(want[i][:], h.Sum(nil))
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var readers sync.WaitGroup
	for i := range channels {
		ch, creqs, err := client.OpenChannel("stackgate-test", []byte{byte(i)})
		if err != nil {
			t.Fatalf("OpenChannel %d: %v", i, err)
		}
		go DiscardRequests(creqs)
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer ch.Close()
			h := sha256.New()
			buf := make([]byte, 1000+997*i) // pieces that split packets
			n, err := io.CopyBuffer(h, struct{ io.Reader }{ch}, buf)
			if err != nil || n != size {
				t.Errorf("channel %d: read %d bytes of %d: %v", i, n, size, err)
				return
			}
			if got := h.Sum(nil); string(got) != string(want[i][:]) {
				t.Errorf("channel %d: data differs from what was sent (sha256 %x, want %x)", i, got, want[i])
			}
		}()
	}
	readers.Wait()
	runtime.ReadMemStats(&after)
	wg.Wait()

	// Both ends are in this process. Upstream allocates every received
	// packet afresh: at least the bytes moved.
	moved := uint64(channels * size)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > moved/2 {
		t.Errorf("allocated %d bytes to move %d: received packets are not reused", allocated, moved)
	}
}

// streamOf is an endless stream of bytes that depends on seed.
func streamOf(seed byte) io.Reader {
	return &pcgReader{r: rand.New(rand.NewPCG(uint64(seed), 0x5eed))}
}

type pcgReader struct{ r *rand.Rand }

func (p *pcgReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}
