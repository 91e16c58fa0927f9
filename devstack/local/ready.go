//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsservices "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/agents"

	"github.com/stackgate/stackgate/devstack"
)

// adminClient authenticates as admin from inside the controller namespace.
func (h *Host) adminClient(ctx context.Context, cfg devstack.Config) (*gophercloud.ProviderClient, error) {
	pw, err := h.password()
	if err != nil {
		return nil, err
	}
	pc, err := openstack.NewClient(fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP))
	if err != nil {
		return nil, fmt.Errorf("keystone client for %s: %w", cfg.ControllerIP, err)
	}
	pc.HTTPClient = *nsHTTPClient(h.names().controller)
	err = openstack.Authenticate(ctx, pc, gophercloud.AuthOptions{
		IdentityEndpoint: fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP),
		Username:         "admin", Password: pw, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"},
	})
	if err != nil {
		return nil, fmt.Errorf("authenticating as admin: %w", err)
	}
	return pc, nil
}

// adminServices returns admin clients of nova, neutron and cinder, reached
// from inside the controller namespace.
func (h *Host) adminServices(ctx context.Context, cfg devstack.Config) (compute, network, volume *gophercloud.ServiceClient, err error) {
	pc, err := h.adminClient(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	eo := gophercloud.EndpointOpts{Region: "RegionOne"}
	if compute, err = openstack.NewComputeV2(pc, eo); err != nil {
		return nil, nil, nil, fmt.Errorf("compute endpoint: %w", err)
	}
	if network, err = openstack.NewNetworkV2(pc, eo); err != nil {
		return nil, nil, nil, fmt.Errorf("network endpoint: %w", err)
	}
	if volume, err = openstack.NewBlockStorageV3(pc, eo); err != nil {
		return nil, nil, nil, fmt.Errorf("volumev3 endpoint: %w", err)
	}
	return compute, network, volume, nil
}

// waitController waits until every controller API answers and its compute,
// network agents and volume services report up. neutronUp runs once
// neutron-server answers (it starts the neutron agents).
func (h *Host) waitController(ctx context.Context, cfg devstack.Config, neutronUp func() error) error {
	alive := func() error {
		var started []string
		for _, n := range h.longRunning(cfg) {
			if _, err := os.Stat(h.path("run", n+".pid")); err == nil {
				started = append(started, n)
			}
		}
		return h.checkAlive(started...)
	}
	client := nsHTTPClient(h.names().controller)
	for _, api := range []struct{ name, port string }{{"neutron-server", "9696"}, {"placement", "8778"}, {"nova-api", "8774"}, {"glance-api", "9292"}, {"cinder-api", "8776"}, {"octavia-api", "9876"}, {"nova-api-metadata", fmt.Sprint(metadataPort)}} {
		url := fmt.Sprintf("http://%s:%s/", cfg.ControllerIP, api.port)
		if err := poll(ctx, api.name+" at "+url, 3*time.Minute, alive, func(ctx context.Context) (bool, string) {
			code, err := httpStatus(ctx, client, url)
			if err != nil {
				return false, err.Error()
			}
			return code < 500, fmt.Sprintf("HTTP %d", code)
		}); err != nil {
			return err
		}
		if api.name == "neutron-server" && neutronUp != nil {
			if err := neutronUp(); err != nil {
				return err
			}
		}
	}
	compute, network, volume, err := h.adminServices(ctx, cfg)
	if err != nil {
		return err
	}
	if err := poll(ctx, "nova-compute on controller", 3*time.Minute, alive, func(ctx context.Context) (bool, string) {
		pages, err := services.List(compute, services.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		all, err := services.ExtractServices(pages)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, s := range all {
			seen = append(seen, s.Host+":"+s.State)
			if s.Host == "controller" && s.State == "up" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("compute services %v", seen)
	}); err != nil {
		return err
	}
	want := []string{"Linux bridge agent", "L3 agent", "DHCP agent", "Metadata agent"}
	if err := poll(ctx, "neutron agents "+strings.Join(want, ", ")+" on controller", 3*time.Minute, alive, func(ctx context.Context) (bool, string) {
		pages, err := agents.List(network, agents.ListOpts{Host: "controller"}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		all, err := agents.ExtractAgents(pages)
		if err != nil {
			return false, err.Error()
		}
		var up []string
		for _, a := range all {
			if a.Alive {
				up = append(up, a.AgentType)
			}
		}
		for _, w := range want {
			if !slices.Contains(up, w) {
				return false, fmt.Sprintf("alive agents %v", up)
			}
		}
		return true, ""
	}); err != nil {
		return err
	}
	return poll(ctx, "cinder-scheduler and cinder-volume on controller", 3*time.Minute, alive, func(ctx context.Context) (bool, string) {
		pages, err := bsservices.List(volume, bsservices.ListOpts{}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		all, err := bsservices.ExtractServices(pages)
		if err != nil {
			return false, err.Error()
		}
		var up []string
		for _, s := range all {
			if s.State == "up" {
				up = append(up, s.Binary+"@"+s.Host)
			}
		}
		ok := slices.ContainsFunc(up, func(s string) bool { return strings.HasPrefix(s, "cinder-scheduler@") }) &&
			slices.Contains(up, "cinder-volume@controller@"+volumeBackend)
		return ok, fmt.Sprintf("volume services up %v", up)
	})
}

// healthy returns the recorded environment if it was built from cfg, all of
// its long-running processes are alive and keystone answers.
func (h *Host) healthy(ctx context.Context, cfg devstack.Config) (*devstack.Environment, error) {
	// A running state of another configuration or state version is not
	// reused, however healthy: Up rebuilds it.
	if h.bootstrapped() {
		if changed := h.changedSince(cfg); changed != "" {
			return nil, fmt.Errorf("built for another configuration: %s", changed)
		}
	}
	env, err := h.environment(cfg)
	if err != nil {
		return nil, err
	}
	for _, n := range h.longRunning(cfg) {
		if _, ok := h.pidOf(n); !ok {
			return nil, fmt.Errorf("%s is not running", n)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP)
	code, err := httpStatus(ctx, nsHTTPClient(h.names().controller), url)
	if err != nil {
		return nil, fmt.Errorf("keystone at %s: %w", url, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("keystone at %s answered HTTP %d", url, code)
	}
	if err := h.ensureSSHD(ctx); err != nil {
		return nil, err
	}
	// Worker services that died are restarted; the registration is idempotent.
	if _, err := h.WorkerStarted(); err == nil {
		for _, s := range h.workerServices(cfg) {
			if _, ok := h.pidOf(s.name); !ok && s.name != "register-worker" {
				if err := h.start(s); err != nil {
					return nil, err
				}
			}
		}
	}
	return env, nil
}

// lock takes the instance's lock (flock on state/lock) for op, or fails
// naming the process that holds it.
func (h *Host) lock(op string) (func(), error) {
	p := h.path(fileLock)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("local instance %q is busy: %s holds %s; wait for it to finish or stop that process",
				h.instance, strings.TrimSpace(string(holder)), p)
		}
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	cmdline, _ := os.ReadFile("/proc/self/cmdline")
	_ = f.Truncate(0)
	_, _ = f.WriteAt(fmt.Appendf(nil, "pid %d (%s, %s since %s)\n", os.Getpid(), strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "), op, time.Now().Format(time.RFC3339)), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// WaitWorker waits, at most timeout, until the worker is usable: it is in
// the aggregate of the alternate availability zone, its nova-compute is up
// in that zone and its cinder-volume is up there too. It asks the API from inside the controller
// namespace, so it needs no tunnel.
func (h *Host) WaitWorker(ctx context.Context, timeout time.Duration) error {
	env, err := h.readEnvironment()
	if isNotRecorded(err) {
		return fmt.Errorf("wait for worker: no running environment in %s: %w", h.stateDir, err)
	}
	if err != nil {
		return err
	}
	cfg := env.Config
	compute, _, volume, err := h.adminServices(ctx, cfg)
	if err != nil {
		return err
	}
	alive := func() error {
		for _, s := range h.workerServices(cfg) {
			if _, ok := h.pidOf(s.name); !ok && s.name != "register-worker" {
				return h.serviceError(s.name, "exited")
			}
		}
		return nil
	}
	return poll(ctx, "worker services in "+cfg.FailureDomainAlt, timeout, alive, func(ctx context.Context) (bool, string) {
		pages, err := services.List(compute, services.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		cs, err := services.ExtractServices(pages)
		if err != nil {
			return false, err.Error()
		}
		vpages, err := bsservices.List(volume, bsservices.ListOpts{Binary: "cinder-volume"}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		vs, err := bsservices.ExtractServices(vpages)
		if err != nil {
			return false, err.Error()
		}
		apages, err := aggregates.List(compute).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		aggs, err := aggregates.ExtractAggregates(apages)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		// Scheduling to the zone goes through placement's copy of the
		// aggregate, which nova writes when the host is added to it.
		aggregateOK := false
		for _, a := range aggs {
			if a.AvailabilityZone == cfg.FailureDomainAlt {
				seen = append(seen, fmt.Sprintf("aggregate %s hosts %v", a.Name, a.Hosts))
				aggregateOK = aggregateOK || slices.Contains(a.Hosts, "worker")
			}
		}
		computeOK, volumeOK := false, false
		for _, s := range cs {
			seen = append(seen, fmt.Sprintf("nova-compute@%s %s %s", s.Host, s.State, s.Zone))
			computeOK = computeOK || (s.Host == "worker" && s.State == "up" && s.Zone == cfg.FailureDomainAlt)
		}
		for _, s := range vs {
			seen = append(seen, fmt.Sprintf("cinder-volume@%s %s %s", s.Host, s.State, s.Zone))
			volumeOK = volumeOK || (s.Host == "worker@"+volumeBackend && s.State == "up" && s.Zone == cfg.FailureDomainAlt)
		}
		return aggregateOK && computeOK && volumeOK, strings.Join(seen, "; ")
	})
}
