//go:build linux

package acceptance_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/tunnel"
)

// env is the environment every test of the package uses.
var env *devstack.Environment

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	var err error
	// The local host reuses a running environment; an Existing host (a
	// clouds.yaml and an SSH endpoint) works the same way.
	host, err := local.New(local.WithOutput(os.Stderr))
	if err == nil {
		env, err = devstack.Up(ctx, devstack.DefaultConfig(), host)
	}
	cancel()
	if err != nil {
		os.Stderr.WriteString("acceptance: DevStack is not available: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Close() // the environment keeps running for the next run
	os.Exit(code)
}

func TestBothZonesAreListed(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	if err := env.WaitForSecondAZ(ctx); err != nil {
		t.Fatalf("second availability zone: %v", err)
	}
	c, err := env.Clients(ctx, env.Config.Cloud)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := availabilityzones.List(c.Compute).AllPages(ctx)
	if err != nil {
		t.Fatalf("listing availability zones: %v", err)
	}
	zones, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, z := range zones {
		seen[z.ZoneName] = z.ZoneState.Available
	}
	for _, want := range []string{env.Config.FailureDomain, env.Config.FailureDomainAlt} {
		if !seen[want] {
			t.Errorf("availability zone %q is not listed as available; zones: %v", want, seen)
		}
	}
}

func TestNetworkLifecycle(t *testing.T) {
	ctx := t.Context()
	c, err := env.Clients(ctx, env.Config.Cloud)
	if err != nil {
		t.Fatal(err)
	}
	name := "acceptance-" + time.Now().Format("150405.000000")
	n, err := networks.Create(ctx, c.Network, networks.CreateOpts{Name: name}).Extract()
	if err != nil {
		t.Fatalf("creating network %q: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := networks.Delete(ctx, c.Network, n.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("deleting network %q: %v", name, err)
		}
	})
	got, err := networks.Get(ctx, c.Network, n.ID).Extract()
	if err != nil {
		t.Fatalf("reading network %q back: %v", name, err)
	}
	if got.Name != name {
		t.Errorf("network %s is called %q, want %q", n.ID, got.Name, name)
	}
}

// A tool that speaks HTTP itself (not gophercloud) reaches the private API
// endpoints through its own tunnel.
func TestRawHTTPThroughTheTunnel(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tun, err := tunnel.Open(ctx, env.TunnelConfig())
	if err != nil {
		t.Fatalf("opening the tunnel: %v", err)
	}
	defer tun.Close()
	url := "http://" + env.Controller.PrivateIP.String() + ":5000/v3"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tun.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET %s through the tunnel: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
}
