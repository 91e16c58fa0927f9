//go:build linux

package local

import (
	"bytes"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("progress", func() {
	It("goes to one sink: WithOutput prints each event as one line, and nothing else", func() {
		var out bytes.Buffer
		h, err := New(WithInstance("sgprog"), WithStateDir(GinkgoT().TempDir()), WithOutput(&out))
		Expect(err).NotTo(HaveOccurred())
		h.progress("packages", 1234*time.Millisecond, nil)
		h.progress("bootstrap", 2*time.Second, errors.New("failed"))
		h.log.Info(eventRestart, "instance", h.instance, "reason", "keystone: HTTP 503\nmore detail")
		h.log.Info("installing packages", "packages", []string{"nova-api"})
		h.log.V(1).Info(eventStageDone, "instance", h.instance, "stage", "verbose", "duration", "1s")
		Expect(out.String()).To(Equal("local[sgprog]: packages   1.23s\n" +
			"local[sgprog]: bootstrap  failed after 2s\n" +
			"local[sgprog]: not healthy (keystone: HTTP 503); restarting\n"))
	})
})
