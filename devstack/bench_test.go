package devstack_test

import (
	"context"
	"testing"
	"time"

	computeservices "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

// benchEnv attaches to the default local environment (bringing it up if
// nothing runs) and waits for its second zone.
func benchEnv(b *testing.B) *devstack.Environment {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	raw, err := local.New().Up(ctx, devstack.DefaultConfig())
	if err != nil {
		b.Fatalf("local environment: %v", err)
	}
	data, err := raw.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	env, err := devstack.Up(ctx, devstack.DefaultConfig(), nil, devstack.WithAttach(data))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Close() })
	if err := env.WaitForSecondAZ(ctx); err != nil {
		b.Fatal(err)
	}
	return env
}

// BenchmarkSecondAZDetection measures how long WaitForSecondAZ takes to
// return once the worker's nova-compute reports up again. The worker's
// compute service is forced down, WaitForSecondAZ polls for a while (its
// interval has grown to the cap by then), the service is let up again, and
// the time from that call's return to WaitForSecondAZ's return is reported
// as detect-ms.
func BenchmarkSecondAZDetection(b *testing.B) {
	env := benchEnv(b)
	ctx := context.Background()
	c, err := env.Clients(ctx, env.Config.CloudAdmin)
	if err != nil {
		b.Fatal(err)
	}
	compute := *c.Compute
	compute.Microversion = "2.53" // services by UUID
	var svc computeservices.Service
	p, err := computeservices.List(&compute, computeservices.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
	if err != nil {
		b.Fatal(err)
	}
	list, err := computeservices.ExtractServices(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range list {
		if s.Zone == env.Config.FailureDomainAlt {
			svc = s
		}
	}
	if svc.ID == "" {
		b.Fatalf("no nova-compute in %s", env.Config.FailureDomainAlt)
	}
	forceDown := func(down bool) {
		if _, err := computeservices.Update(ctx, &compute, svc.ID, forcedDown(down)).Extract(); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { forceDown(false) })
	var total time.Duration
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		forceDown(true)
		done := make(chan time.Time, 1)
		errc := make(chan error, 1)
		go func() {
			err := env.WaitForSecondAZ(ctx)
			done <- time.Now()
			errc <- err
		}()
		// The worker comes back at an arbitrary moment of the wait's polling.
		select {
		case <-time.After(2*time.Second + time.Duration(i%10)*137*time.Millisecond):
		case <-done:
			b.Fatal("WaitForSecondAZ returned while the worker's compute was down")
		}
		forceDown(false)
		up := time.Now()
		end := <-done
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		d := end.Sub(up)
		total += d
		worst = max(worst, d)
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "detect-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "worst-detect-ms")
}

// BenchmarkCollectLogs measures a full log collection: every node's logs and
// configuration, redacted, and the resource dumps.
func BenchmarkCollectLogs(b *testing.B) {
	env := benchEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := env.CollectLogs(ctx, b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
}
