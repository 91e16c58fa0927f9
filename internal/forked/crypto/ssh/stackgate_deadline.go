// Copyright 2026 The stackgate Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"sync"
	"time"
)

// deadline ends the waits on a condition variable once a time has passed
// (stackgate): a channel's read buffer and its remote window each have one,
// so the net.Conn of a direct-tcpip channel takes read and write deadlines.
// Its fields are guarded by the condition variable's lock.
type deadline struct {
	at      time.Time
	timer   *time.Timer
	expired bool
}

// set moves the deadline to t (the zero time: none) and wakes the waiters
// on c when it passes. c.L must be held.
func (d *deadline) set(c *sync.Cond, t time.Time) {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.at, d.expired = t, false
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		d.expired = true
		c.Broadcast()
		return
	}
	d.timer = time.AfterFunc(wait, func() {
		c.L.Lock()
		defer c.L.Unlock()
		if d.at.Equal(t) { // not moved since
			d.expired = true
			c.Broadcast()
		}
	})
}

// setDeadline sets the time after which Read fails with
// os.ErrDeadlineExceeded (a net.Error with Timeout() == true).
func (b *buffer) setDeadline(t time.Time) {
	b.Cond.L.Lock()
	b.deadline.set(b.Cond, t)
	b.Cond.L.Unlock()
}

// setDeadline sets the time after which reserve, waiting for the peer to
// open the window, fails with os.ErrDeadlineExceeded.
func (w *window) setDeadline(t time.Time) {
	w.L.Lock()
	w.deadline.set(w.Cond, t)
	w.L.Unlock()
}
