//go:build linux

package local

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	bsservices "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/stackgate/stackgate/devstack"
)

// ServiceStatus is the state of one recorded process.
type ServiceStatus struct {
	// Name is the service's name (its log is logs/<Name>.log).
	Name string
	// PID is the recorded process id.
	PID int
	// Running says whether that process is still alive.
	Running bool
}

// Status describes an instance as found on this machine.
type Status struct {
	// Instance and StateDir identify the environment.
	Instance, StateDir string
	// Up says whether an environment was brought up and not taken down.
	Up bool
	// KeystoneAnswers says whether keystone answered from the controller namespace.
	KeystoneAnswers bool
	// Services lists every recorded process.
	Services []ServiceStatus
	// WorkerStarted is when the worker's services were started (zero if not).
	WorkerStarted time.Time
	// WorkerRegistration is the last line of the worker's registration log.
	WorkerRegistration string
	// Leftovers lists namespaces, links and processes that exist.
	Leftovers []string
	// Zones are the availability zones of servers and of volumes, as nova
	// and cinder report them (when keystone answers).
	Zones []Zone
	// ZonesError says why the zones could not be listed ("" when they were,
	// or when keystone did not answer).
	ZonesError string
	// VMs are the VMs each node's libvirtd runs (real VMs only).
	VMs []VM
}

// VM is one VM of a node's libvirtd.
type VM struct {
	// Node is the node whose libvirtd runs it: controller or worker.
	Node string
	// Name is libvirt's domain name (nova's instance name) and State its
	// state ("running", "shut off").
	Name, State string
	// PID is its QEMU process (0 when not running) and RSS that process's
	// resident memory in bytes.
	PID int
	RSS int64
}

// Zone is one availability zone of a service.
type Zone struct {
	// Service is "compute" (nova-compute's zones) or "volume" (cinder-volume's).
	Service string
	// Name is the zone's name.
	Name string
	// Hosts are the hosts of the zone's compute or volume services.
	Hosts []ZoneHost
}

// ZoneHost is one compute or volume service in a zone.
type ZoneHost struct {
	// Host is the service's host (for cinder, host@backend).
	Host string
	// State is "up" or "down", as the service's heartbeats say.
	State string
	// Status is "enabled" or "disabled".
	Status string
	// Servers is the number of servers nova counts on a compute host (its
	// hypervisor's running_vms); 0 for volume hosts.
	Servers int
}

// Available says whether a service of the zone is up and enabled, as nova
// and cinder require to place a server or volume there.
func (z Zone) Available() bool {
	for _, h := range z.Hosts {
		if h.State == "up" && h.Status == "enabled" {
			return true
		}
	}
	return false
}

// Status reports the instance's processes and whether keystone answers.
func (h *Host) Status(ctx context.Context) (*Status, error) {
	s := &Status{Instance: h.instance, StateDir: h.stateDir}
	for _, n := range h.recorded() {
		pid, ok := h.pidOf(n)
		s.Services = append(s.Services, ServiceStatus{Name: n, PID: pid, Running: ok})
	}
	s.Leftovers = h.leftovers(ctx)
	s.WorkerStarted, _ = h.WorkerStarted()
	if b, err := os.ReadFile(h.path(dirLogs, "register-worker.log")); err == nil {
		s.WorkerRegistration = lastLines(string(b), 1)
	}
	env, err := h.readEnvironment()
	if isNotRecorded(err) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.Up = true
	if h.virt != VirtFake {
		s.VMs = h.vms(ctx)
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	code, err := httpStatus(kctx, nsHTTPClient(h.names().controller), fmt.Sprintf("http://%s:5000/v3", env.Config.ControllerIP))
	s.KeystoneAnswers = err == nil && code == http.StatusOK
	if s.KeystoneAnswers {
		zctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if s.Zones, err = h.zones(zctx, env.Config); err != nil {
			s.ZonesError = err.Error()
		}
	}
	return s, nil
}

// zones lists the zones of nova-compute and cinder-volume services, asking
// from inside the controller namespace.
func (h *Host) zones(ctx context.Context, cfg devstack.Config) ([]Zone, error) {
	compute, _, volume, err := h.adminServices(ctx, cfg)
	if err != nil {
		return nil, err
	}
	byName := map[[2]string]*Zone{}
	add := func(service, zone string, host ZoneHost) {
		k := [2]string{service, zone}
		if byName[k] == nil {
			byName[k] = &Zone{Service: service, Name: zone}
		}
		byName[k].Hosts = append(byName[k].Hosts, host)
	}
	pages, err := services.List(compute, services.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing nova-compute services: %w", err)
	}
	cs, err := services.ExtractServices(pages)
	if err != nil {
		return nil, fmt.Errorf("listing nova-compute services: %w", err)
	}
	hpages, err := hypervisors.List(compute, nil).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing hypervisors: %w", err)
	}
	hs, err := hypervisors.ExtractHypervisors(hpages)
	if err != nil {
		return nil, fmt.Errorf("listing hypervisors: %w", err)
	}
	servers := map[string]int{}
	for _, hv := range hs {
		servers[hv.Service.Host] += hv.RunningVMs
	}
	for _, c := range cs {
		add("compute", c.Zone, ZoneHost{Host: c.Host, State: c.State, Status: c.Status, Servers: servers[c.Host]})
	}
	vpages, err := bsservices.List(volume, bsservices.ListOpts{Binary: "cinder-volume"}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing cinder-volume services: %w", err)
	}
	vs, err := bsservices.ExtractServices(vpages)
	if err != nil {
		return nil, fmt.Errorf("listing cinder-volume services: %w", err)
	}
	for _, v := range vs {
		add("volume", v.Zone, ZoneHost{Host: v.Host, State: v.State, Status: v.Status})
	}
	out := make([]Zone, 0, len(byName))
	for _, z := range byName {
		sort.Slice(z.Hosts, func(i, j int) bool { return z.Hosts[i].Host < z.Hosts[j].Host })
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// String renders the status for people.
func (s *Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "instance %s (state %s): up=%v keystone=%v\n", s.Instance, s.StateDir, s.Up, s.KeystoneAnswers)
	for _, svc := range s.Services {
		state := "stopped"
		if svc.Running {
			state = "running"
		}
		fmt.Fprintf(&b, "  %-26s pid %-7d %s\n", svc.Name, svc.PID, state)
	}
	for _, z := range s.Zones {
		state := "unavailable"
		if z.Available() {
			state = "available"
		}
		hosts := make([]string, len(z.Hosts))
		for i, h := range z.Hosts {
			hosts[i] = fmt.Sprintf("%s %s, %s", h.Host, h.State, h.Status)
			if z.Service == "compute" {
				hosts[i] += fmt.Sprintf(", servers %d", h.Servers)
			}
		}
		fmt.Fprintf(&b, "zone %-8s %-10s %-12s %s\n", z.Service, z.Name, state, strings.Join(hosts, "; "))
	}
	for _, v := range s.VMs {
		fmt.Fprintf(&b, "vm   %-10s %-20s %-9s pid %-7d rss %d MiB\n", v.Node, v.Name, v.State, v.PID, v.RSS>>20)
	}
	if s.ZonesError != "" {
		fmt.Fprintf(&b, "zones: %s\n", s.ZonesError)
	}
	if !s.WorkerStarted.IsZero() {
		fmt.Fprintf(&b, "worker started %s; registration: %s\n", s.WorkerStarted.Format(time.RFC3339), s.WorkerRegistration)
	}
	// Of an environment that is up, these are its parts; without one, what
	// an interrupted Up or Down left behind.
	if !s.Up && len(s.Leftovers) > 0 {
		fmt.Fprintf(&b, "left behind (no environment is up; down removes them): %s\n", strings.Join(s.Leftovers, ", "))
	}
	return b.String()
}
