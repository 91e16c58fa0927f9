package framework_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
)

var _ = Describe("intervals from the e2e configuration", func() {
	DescribeTable("IntervalTimeout reads the first interval",
		func(in []interface{}, want time.Duration) {
			Expect(framework.IntervalTimeout(in...)).To(Equal(want))
		},
		Entry("a duration string", []interface{}{"20m", "10s"}, 20*time.Minute),
		Entry("a number of seconds as a string", []interface{}{"90"}, 90*time.Second),
		Entry("a time.Duration", []interface{}{3 * time.Second}, 3*time.Second),
		Entry("an int of seconds", []interface{}{5}, 5*time.Second),
	)

	It("refuses what is not a duration, naming it", func() {
		_, err := framework.IntervalTimeout("soon")
		Expect(err).To(MatchError(ContainSubstring(`interval "soon" is not a duration`)))
		_, err = framework.IntervalTimeout()
		Expect(err).To(MatchError(ContainSubstring("no intervals given")))
	})

	It("reads the polling interval, with a default", func() {
		Expect(framework.IntervalPolling(time.Second, "20m", "10s")).To(Equal(10 * time.Second))
		Expect(framework.IntervalPolling(time.Second, "20m")).To(Equal(time.Second))
	})

	It("finds wait-alt-az in the embedded configuration", func(ctx SpecContext) {
		conf, err := framework.LoadE2EConfig(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(framework.IntervalTimeout(conf.GetIntervals("multi-az", "wait-alt-az")...)).To(Equal(20 * time.Minute))
	})
})

var _ = Describe("ParseIntervals", func() {
	It("reads the timeout and the polling whole", func() {
		Expect(framework.ParseIntervals("20m", "10s")).To(Equal(devstack.Intervals{Timeout: 20 * time.Minute, Polling: 10 * time.Second}))
		Expect(framework.ParseIntervals("5m")).To(Equal(devstack.Intervals{Timeout: 5 * time.Minute}))
	})

	It("refuses what cannot bound a wait, naming it", func() {
		_, err := framework.ParseIntervals("5m", "often")
		Expect(err).To(MatchError(ContainSubstring(`polling: interval "often" is not a duration`)))
		_, err = framework.ParseIntervals("0s", "1s")
		Expect(err).To(MatchError(ContainSubstring("the timeout must be positive")))
		_, err = framework.ParseIntervals("5m", "1s", "2s")
		Expect(err).To(MatchError(ContainSubstring("3 intervals given")))
	})

	It("reads every wait of the embedded configuration", func(ctx SpecContext) {
		conf, err := framework.LoadE2EConfig(ctx, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(conf.Intervals).NotTo(BeEmpty())
		for key := range conf.Intervals {
			spec, name, _ := strings.Cut(key, "/")
			iv, err := framework.ParseIntervals(conf.GetIntervals(spec, name)...)
			Expect(err).NotTo(HaveOccurred(), key)
			Expect(iv.Polling).To(BeNumerically(">", 0), "%s gives its polling", key)
		}
	})
})
