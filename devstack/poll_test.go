package devstack_test

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("Poll", func() {
	// attempts records when check ran and never reports done.
	attempts := func(at *[]time.Time) func(context.Context) (string, bool, error) {
		return func(context.Context) (string, bool, error) {
			*at = append(*at, time.Now())
			return "not yet", false, nil
		}
	}

	It("checks at once, then pauses the configured polling between checks", func(ctx SpecContext) {
		var at []time.Time
		start := time.Now()
		err := devstack.Poll(ctx, logr.Discard(), "a polled thing", devstack.Intervals{Timeout: 700 * time.Millisecond, Polling: 200 * time.Millisecond}, attempts(&at))
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(at).NotTo(BeEmpty())
		Expect(at[0].Sub(start)).To(BeNumerically("<", 200*time.Millisecond), "the first check runs at once")
		Expect(len(at)).To(BeNumerically("<=", 4), "no more checks than the polling allows within the timeout")
		for i := 1; i < len(at); i++ {
			Expect(at[i].Sub(at[i-1])).To(BeNumerically(">=", 200*time.Millisecond), "pause %d", i)
		}
	}, SpecTimeout(time.Minute))

	It("without polling, pauses from MinPollInterval, growing", func(ctx SpecContext) {
		var at []time.Time
		_ = devstack.Poll(ctx, logr.Discard(), "a polled thing", devstack.Intervals{Timeout: 600 * time.Millisecond}, attempts(&at))
		Expect(len(at)).To(BeNumerically(">=", 3))
		Expect(at[1].Sub(at[0])).To(BeNumerically(">=", devstack.MinPollInterval))
		Expect(at[2].Sub(at[1])).To(BeNumerically(">=", devstack.MinPollInterval*3/2))
	}, SpecTimeout(time.Minute))

	It("says it reached its own limit, what it waited for and what it saw last", func(ctx SpecContext) {
		var at []time.Time
		err := devstack.Poll(ctx, logr.Discard(), "the service", devstack.Intervals{Timeout: 300 * time.Millisecond, Polling: 50 * time.Millisecond}, attempts(&at))
		var te *devstack.WaitTimeoutError
		Expect(errors.As(err, &te)).To(BeTrue())
		Expect(te.Waited).To(BeNumerically(">=", 300*time.Millisecond))
		Expect(err.Error()).To(MatchRegexp(`^timed out after \S+ waiting for the service \(its limit is 300ms\); last seen: not yet$`))
	}, SpecTimeout(time.Minute))

	It("says when the caller's context ended it before its limit", func(ctx SpecContext) {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		var at []time.Time
		err := devstack.Poll(short, logr.Discard(), "the service", devstack.Intervals{Timeout: time.Hour, Polling: 50 * time.Millisecond}, attempts(&at))
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(err.Error()).To(ContainSubstring("the caller's context ended first"))
		Expect(err.Error()).NotTo(ContainSubstring("1h0m0s"))
	}, SpecTimeout(time.Minute))

	It("keeps retrying errors and names the last one with the last observation", func(ctx SpecContext) {
		n := 0
		err := devstack.Poll(ctx, logr.Discard(), "an API", devstack.Intervals{Timeout: 300 * time.Millisecond, Polling: 20 * time.Millisecond}, func(context.Context) (string, bool, error) {
			n++
			if n == 1 {
				return "starting", false, nil
			}
			return "", false, errors.New("HTTP 503")
		})
		var te *devstack.WaitTimeoutError
		Expect(errors.As(err, &te)).To(BeTrue())
		Expect(n).To(BeNumerically(">", 2))
		Expect(te.LastSeen).To(Equal("error: HTTP 503 (the last check that answered saw: starting)"))
	}, SpecTimeout(time.Minute))

	It("returns a Permanent error at once, saying what it waited for", func(ctx SpecContext) {
		n := 0
		dead := errors.New("the service died")
		err := devstack.Poll(ctx, logr.Discard(), "the service", devstack.Intervals{Timeout: time.Hour, Polling: time.Hour}, func(context.Context) (string, bool, error) {
			n++
			return "", false, devstack.Permanent(dead)
		})
		Expect(err).To(MatchError(dead))
		Expect(err.Error()).To(Equal("waiting for the service: the service died"))
		Expect(n).To(Equal(1))
	}, SpecTimeout(time.Minute))

	It("returns nil once the check holds", func(ctx SpecContext) {
		n := 0
		Expect(devstack.Poll(ctx, logr.Discard(), "three looks", devstack.Intervals{Timeout: time.Minute, Polling: 10 * time.Millisecond}, func(context.Context) (string, bool, error) {
			n++
			return "", n == 3, nil
		})).To(Succeed())
		Expect(n).To(Equal(3))
	}, SpecTimeout(time.Minute))

	It("Up's WithPolling sets the polling of conditions that have none", func() {
		Expect(devstack.PollingForTest(devstack.ForKeystoneToken(), 10*time.Second)).To(Equal(10 * time.Second))
		own := devstack.ForKeystoneToken().WithIntervals(devstack.Intervals{Timeout: time.Minute, Polling: time.Second})
		Expect(devstack.PollingForTest(own, 10*time.Second)).To(Equal(time.Second))
	})
})
