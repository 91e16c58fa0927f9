//go:build linux

package local

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("polling", func() {
	never := func(context.Context) (bool, string) { return false, "still starting" }

	It("says it reached its own limit, and how long it waited", func(ctx SpecContext) {
		err := poll(ctx, "the service", 300*time.Millisecond, nil, never)
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(err.Error()).To(MatchRegexp(`^timed out after [0-9.]+m?s waiting for the service \(its limit is 300ms\)`))
		Expect(err.Error()).To(ContainSubstring("its limit is 300ms"))
		Expect(err.Error()).To(ContainSubstring("last seen: still starting"))
	}, SpecTimeout(time.Minute))

	It("says when the caller's context ended it before its limit", func(ctx SpecContext) {
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := poll(short, "the service", time.Hour, nil, never)
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(err.Error()).To(ContainSubstring("the caller's context ended first"))
		Expect(err.Error()).NotTo(ContainSubstring("1h0m0s"), "the limit it never reached is not given as the time waited")
	}, SpecTimeout(time.Minute))
})
