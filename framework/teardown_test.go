package framework_test

import (
	"context"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

// downRecorder wraps a real host and records the context its Down gets.
type downRecorder struct {
	devstack.Host
	downs       int
	ctxErr      error
	hasDeadline bool
}

func (h *downRecorder) Down(ctx context.Context) error {
	h.downs++
	h.ctxErr = ctx.Err()
	_, h.hasDeadline = ctx.Deadline()
	return h.Host.Down(ctx)
}

var _ = Describe("TearDownDevStack", func() {
	// An environment that was never up: the log collection fails (it is
	// only a warning), which leaves the deletion to look at.
	notUp := func() *framework.DevStack {
		return &framework.DevStack{Environment: &devstack.Environment{Host: "existing", StateDir: filepath.Join(GinkgoT().TempDir(), "none")}}
	}

	It("deletes the environment when asked, with a bounded context of its own that outlives an interrupted suite's", func(ctx SpecContext) {
		host := &downRecorder{Host: &devstack.Existing{}}
		interrupted, cancel := context.WithCancel(ctx)
		cancel()
		framework.TearDownDevStack(interrupted, framework.TearDownDevStackInput{
			DevStack: notUp(), ArtifactFolder: GinkgoT().TempDir(), Host: host, Down: true,
		})
		Expect(host.downs).To(Equal(1))
		Expect(host.ctxErr).NotTo(HaveOccurred(), "Down got a context that had already ended")
		Expect(host.hasDeadline).To(BeTrue(), "Down's context is bounded (DownTimeout)")
	})

	It("keeps the environment when cleanup is skipped or Down is not set", func(ctx SpecContext) {
		host := &downRecorder{Host: &devstack.Existing{}}
		framework.TearDownDevStack(ctx, framework.TearDownDevStackInput{
			DevStack: notUp(), ArtifactFolder: GinkgoT().TempDir(), Host: host, Down: true, SkipCleanup: true,
		})
		framework.TearDownDevStack(ctx, framework.TearDownDevStackInput{
			DevStack: notUp(), ArtifactFolder: GinkgoT().TempDir(), Host: host,
		})
		Expect(host.downs).To(BeZero())
	})
})
