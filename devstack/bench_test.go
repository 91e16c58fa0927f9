//go:build linux

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
	host, err := local.New()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := host.Up(ctx, devstack.DefaultConfig())
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

// BenchmarkRedact measures Redact on service logs as DevStack's services
// write them (timestamps, request ids, URLs, a credential now and then),
// with the secrets a collection learns from the configuration.
func BenchmarkRedact(b *testing.B) {
	lines := []string{
		"2026-11-21 16:06:54.203 12345 INFO nova.api.openstack.requestlog [None req-4f1c2d3e-aaaa-bbbb-cccc-0123456789ab admin admin] 10.0.3.15 \"GET /compute/v2.1/servers/detail?all_tenants=True\" status: 200 len: 1234 microversion: 2.1 time: 0.123456",
		"2026-11-21 16:06:54.204 12345 DEBUG oslo_concurrency.lockutils [-] Lock \"compute_resources\" acquired by \"nova.compute.resource_tracker.ResourceTracker._update_available_resource\" :: waited 0.000s inner /usr/lib/python3/dist-packages/oslo_concurrency/lockutils.py:407",
		"2026-11-21 16:06:54.205 12345 DEBUG keystoneauth.session [-] REQ: curl -g -i -X GET http://10.0.3.15/identity/v3/auth/tokens -H \"X-Auth-Token: {SHA256}abcdef\" -H \"User-Agent: nova-compute\" _http_log_request",
		"2026-11-21 16:06:54.206 12345 INFO neutron.wsgi [-] 10.0.3.15 \"POST /v2.0/ports HTTP/1.1\" status: 201  len: 1102 time: 0.2111",
		"2026-11-21 16:06:54.207 12345 DEBUG nova.compute.manager [-] connecting to rabbit://openstack:learnt-secret-1@10.0.3.15:5672/ with password=learnt-secret-2 _connect",
	}
	var log []byte
	for len(log) < 16<<20 {
		for _, l := range lines {
			log = append(log, l...)
			log = append(log, '\n')
		}
	}
	r := devstack.NewRedactor("learnt-secret-1", "learnt-secret-2", "clouds-password-3")
	b.SetBytes(int64(len(log)))
	b.ResetTimer()
	for b.Loop() {
		_ = r.Redact(log)
	}
}
