package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	blockazs "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	blockservices "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	computeazs "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	computeservices "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/agents"
)

// Strategy is one readiness condition of an environment, in the style of
// testcontainers' wait strategies: small, composable and bounded.
type Strategy interface {
	// WaitUntilReady returns once the condition holds, or an error that says
	// what was awaited and what was seen last.
	WaitUntilReady(ctx context.Context, env *Environment) error
	// String says what the strategy waits for.
	String() string
}

// Condition is a Strategy that polls one check with backoff until it holds.
type Condition struct {
	what      string
	cloud     string
	intervals Intervals
	// noClients marks checks that authenticate themselves instead of using Clients.
	noClients bool
	check     func(ctx context.Context, env *Environment, cloud string, c *Clients) (seen string, ok bool, err error)
}

// WithTimeout bounds the condition (default DefaultWaitTimeout); the
// context's deadline still applies when it is earlier.
func (c *Condition) WithTimeout(d time.Duration) *Condition {
	cp := *c
	cp.intervals.Timeout = d
	return &cp
}

// WithIntervals bounds the condition and sets its polling as an e2e
// configuration's [timeout, polling] do (see Intervals).
func (c *Condition) WithIntervals(iv Intervals) *Condition {
	cp := *c
	cp.intervals = iv
	return &cp
}

// WithCloud makes the condition look through the clouds.yaml entry called
// name (default: the environment's Config.CloudAdmin).
func (c *Condition) WithCloud(name string) *Condition {
	cp := *c
	cp.cloud = name
	return &cp
}

// String says what the condition waits for.
func (c *Condition) String() string { return c.what }

// WaitUntilReady polls the condition until it holds, its intervals' timeout
// passes or ctx ends.
func (c *Condition) WaitUntilReady(ctx context.Context, env *Environment) error {
	return Poll(ctx, env.state().log, c.what, c.intervals, func(ctx context.Context) (string, bool, error) {
		ok, seen, err := c.Check(ctx, env)
		return seen, ok, err
	})
}

// Check looks once, without waiting, whether the condition holds now, and
// says what it saw: the decision WaitUntilReady polls, for reports that
// must agree with the wait.
func (c *Condition) Check(ctx context.Context, env *Environment) (ok bool, seen string, err error) {
	cloud := c.cloud
	if cloud == "" {
		cloud = env.Config.WithDefaults().CloudAdmin
	}
	var cl *Clients
	if !c.noClients {
		if cl, err = env.Clients(ctx, cloud); err != nil {
			return false, "", err
		}
	}
	seen, ok, err = c.check(ctx, env, cloud, cl)
	return ok, seen, err
}

// Wait runs the strategies one after the other and returns the first error.
func (e *Environment) Wait(ctx context.Context, strategies ...Strategy) error {
	for _, s := range strategies {
		if err := s.WaitUntilReady(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// all is ForAll's strategy.
type all []Strategy

// ForAll combines strategies into one that waits for each in turn.
func ForAll(strategies ...Strategy) Strategy { return all(strategies) }

func (a all) WaitUntilReady(ctx context.Context, env *Environment) error { return env.Wait(ctx, a...) }

func (a all) String() string {
	parts := make([]string, len(a))
	for i, s := range a {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", then ")
}

// ForKeystoneToken waits until keystone issues a token to the cloud's
// credentials (a fresh authentication each time it looks).
func ForKeystoneToken() *Condition {
	return &Condition{what: "a keystone token", check: func(ctx context.Context, env *Environment, cloud string, _ *Clients) (string, bool, error) {
		pc, err := env.ProviderClient(ctx, cloud)
		if err != nil {
			return "", false, err
		}
		if pc.Token() == "" {
			return "keystone answered without a token", false, nil
		}
		return "token issued", true, nil
	}, noClients: true}
}

type catalogResult interface {
	ExtractServiceCatalog() (*tokens.ServiceCatalog, error)
}

// ForCatalog waits until the service catalog lists every service type given
// ("compute", "network", "volumev3", "image", "load-balancer", ...).
func ForCatalog(serviceTypes ...string) *Condition {
	want := slices.Clone(serviceTypes)
	return &Condition{what: fmt.Sprintf("service catalog with %s", strings.Join(want, ", ")), check: func(ctx context.Context, env *Environment, cloud string, _ *Clients) (string, bool, error) {
		pc, err := env.ProviderClient(ctx, cloud)
		if err != nil {
			return "", false, err
		}
		r, ok := pc.GetAuthResult().(catalogResult)
		if !ok {
			return "", false, Permanent(fmt.Errorf("cloud %q does not use keystone v3 (no service catalog in the token)", cloud))
		}
		catalog, err := r.ExtractServiceCatalog()
		if err != nil {
			return "", false, err
		}
		var have []string
		for _, e := range catalog.Entries {
			if len(e.Endpoints) > 0 {
				have = append(have, e.Type)
			}
		}
		sort.Strings(have)
		var missing []string
		for _, w := range want {
			if !slices.Contains(have, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("catalog has [%s], missing [%s]", strings.Join(have, " "), strings.Join(missing, " ")), false, nil
		}
		return "", true, nil
	}, noClients: true}
}

// ForComputeServices waits until at least n nova-compute services are up and enabled.
func ForComputeServices(n int) *Condition {
	return &Condition{what: fmt.Sprintf("%d nova-compute services up and enabled", n), check: func(ctx context.Context, _ *Environment, _ string, c *Clients) (string, bool, error) {
		pages, err := computeservices.List(c.Compute, computeservices.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
		if err != nil {
			return "", false, fmt.Errorf("listing compute services: %w", err)
		}
		svcs, err := computeservices.ExtractServices(pages)
		if err != nil {
			return "", false, err
		}
		up := 0
		var seen []string
		for _, s := range svcs {
			if s.State == "up" && s.Status == "enabled" {
				up++
			}
			seen = append(seen, fmt.Sprintf("%s %s/%s in %s", s.Host, s.State, s.Status, s.Zone))
		}
		return fmt.Sprintf("%d of %d wanted up and enabled: [%s]", up, n, strings.Join(seen, ", ")), up >= n, nil
	}}
}

// ForNetworkAgents waits until neutron lists at least one agent and every
// listed agent is alive and administratively up.
func ForNetworkAgents() *Condition {
	return &Condition{what: "every neutron agent alive", check: func(ctx context.Context, _ *Environment, _ string, c *Clients) (string, bool, error) {
		pages, err := agents.List(c.Network, agents.ListOpts{}).AllPages(ctx)
		if err != nil {
			return "", false, fmt.Errorf("listing network agents: %w", err)
		}
		list, err := agents.ExtractAgents(pages)
		if err != nil {
			return "", false, err
		}
		if len(list) == 0 {
			return "no network agents registered", false, nil
		}
		ok := true
		var seen []string
		for _, a := range list {
			state := "alive"
			if !a.Alive {
				state, ok = "dead", false
			}
			if !a.AdminStateUp {
				state, ok = state+",admin-down", false
			}
			seen = append(seen, fmt.Sprintf("%s@%s %s", a.Binary, a.Host, state))
		}
		sort.Strings(seen)
		return "agents: [" + strings.Join(seen, ", ") + "]", ok, nil
	}}
}

// ForAvailabilityZone waits until az is usable for servers and volumes: a
// nova zone with a host whose nova-compute is available and active, placement
// offering that zone's aggregate a candidate for a one-vCPU server (what the
// scheduler asks; nova lists a host in its zone before placement mirrors the
// aggregate), and a cinder zone with a cinder-volume service up and enabled.
// The placement check needs an admin cloud (the default).
func ForAvailabilityZone(az string) *Condition {
	return &Condition{what: fmt.Sprintf("availability zone %q (nova host with an up, enabled nova-compute, a placement candidate in its aggregate and a cinder-volume up in the zone)", az), check: func(ctx context.Context, _ *Environment, _ string, c *Clients) (string, bool, error) {
		novaOK, novaSeen, err := novaZone(ctx, c, az)
		if err != nil {
			return "", false, err
		}
		placementOK, placementSeen := false, "not asked before nova shows the zone"
		if novaOK {
			if placementOK, placementSeen, err = placementZone(ctx, c, az); err != nil {
				return "", false, err
			}
		}
		cinderOK, cinderSeen, err := cinderZone(ctx, c, az)
		if err != nil {
			return "", false, err
		}
		return "nova: " + novaSeen + "; placement: " + placementSeen + "; cinder: " + cinderSeen, novaOK && placementOK && cinderOK, nil
	}}
}

// placementZone asks placement, as nova's scheduler does, for a candidate
// for a one-vCPU server among the members of az's host aggregates.
func placementZone(ctx context.Context, c *Clients, az string) (bool, string, error) {
	compute := *c.Compute
	compute.Microversion = "2.41" // aggregates carry their UUID, placement's name for them
	pages, err := aggregates.List(&compute).AllPages(ctx)
	if err != nil {
		return false, "", fmt.Errorf("listing nova host aggregates: %w", err)
	}
	aggs, err := aggregates.ExtractAggregates(pages)
	if err != nil {
		return false, "", err
	}
	var uuids []string
	for _, a := range aggs {
		if a.AvailabilityZone == az && a.UUID != "" {
			uuids = append(uuids, a.UUID)
		}
	}
	if len(uuids) == 0 {
		return false, fmt.Sprintf("no host aggregate has availability_zone=%s", az), nil
	}
	pc, err := openstack.NewPlacementV1(c.Provider, gophercloud.EndpointOpts{Region: c.Region})
	if err != nil {
		return false, "", fmt.Errorf("placement endpoint: %w", err)
	}
	pc.Microversion = "1.21" // member_of
	// GET /allocation_candidates (placement API 1.21) by hand: gophercloud
	// has a package for it only since v2.11, newer than importers such as
	// CAPO require.
	q := url.Values{"resources": {"VCPU:1"}, "member_of": {"in:" + strings.Join(uuids, ",")}, "limit": {"1"}}
	var cands struct {
		AllocationRequests []json.RawMessage `json:"allocation_requests"`
	}
	if _, err := pc.Get(ctx, pc.ServiceURL("allocation_candidates")+"?"+q.Encode(), &cands, nil); err != nil {
		return false, "", fmt.Errorf("asking placement for allocation candidates in %s: %w", az, err)
	}
	if len(cands.AllocationRequests) == 0 {
		return false, fmt.Sprintf("no allocation candidate in aggregate(s) %s", strings.Join(uuids, ",")), nil
	}
	return true, fmt.Sprintf("%d candidate(s) in aggregate(s) %s", len(cands.AllocationRequests), strings.Join(uuids, ",")), nil
}

func novaZone(ctx context.Context, c *Clients, az string) (bool, string, error) {
	pages, err := computeazs.ListDetail(c.Compute).AllPages(ctx)
	if err != nil {
		return false, "", fmt.Errorf("listing nova availability zones: %w", err)
	}
	zones, err := computeazs.ExtractAvailabilityZones(pages)
	if err != nil {
		return false, "", err
	}
	var names []string
	for _, z := range zones {
		names = append(names, z.ZoneName)
		if z.ZoneName != az {
			continue
		}
		var hosts []string
		for host, svcs := range z.Hosts {
			if s, ok := svcs["nova-compute"]; ok {
				if s.Available && s.Active && z.ZoneState.Available {
					return true, fmt.Sprintf("zone %s has compute host %s up", az, host), nil
				}
				hosts = append(hosts, fmt.Sprintf("%s available=%t active=%t", host, s.Available, s.Active))
			}
		}
		return false, fmt.Sprintf("zone %s available=%t, compute hosts [%s]", az, z.ZoneState.Available, strings.Join(hosts, ", ")), nil
	}
	sort.Strings(names)
	return false, fmt.Sprintf("no zone %s (zones: [%s])", az, strings.Join(names, " ")), nil
}

func cinderZone(ctx context.Context, c *Clients, az string) (bool, string, error) {
	pages, err := blockazs.List(c.BlockStorage).AllPages(ctx)
	if err != nil {
		return false, "", fmt.Errorf("listing cinder availability zones: %w", err)
	}
	zones, err := blockazs.ExtractAvailabilityZones(pages)
	if err != nil {
		return false, "", err
	}
	var names []string
	zoneOK := false
	for _, z := range zones {
		names = append(names, z.ZoneName)
		if z.ZoneName == az && z.ZoneState.Available {
			zoneOK = true
		}
	}
	sort.Strings(names)
	spages, err := blockservices.List(c.BlockStorage, blockservices.ListOpts{Binary: "cinder-volume"}).AllPages(ctx)
	if err != nil {
		return false, "", fmt.Errorf("listing cinder services: %w", err)
	}
	svcs, err := blockservices.ExtractServices(spages)
	if err != nil {
		return false, "", err
	}
	up := false
	var seen []string
	for _, s := range svcs {
		if s.Zone != az {
			continue
		}
		if s.State == "up" && s.Status == "enabled" {
			up = true
		}
		seen = append(seen, fmt.Sprintf("%s %s/%s", s.Host, s.State, s.Status))
	}
	return zoneOK && up, fmt.Sprintf("zones [%s], cinder-volume in %s: [%s]", strings.Join(names, " "), az, strings.Join(seen, ", ")), nil
}

// WaitForSecondAZ waits until the worker's zone (Config.FailureDomainAlt) is
// usable, as ForAvailabilityZone checks it: a nova zone with a host whose
// nova-compute is available and active, a placement allocation candidate for
// a one-vCPU server in the zone's host aggregates, and a cinder zone with a
// cinder-volume up and enabled. It waits at most DefaultSecondAZTimeout, or
// until ctx ends.
func (e *Environment) WaitForSecondAZ(ctx context.Context) error {
	return ForAvailabilityZone(e.Config.WithDefaults().FailureDomainAlt).WithTimeout(DefaultSecondAZTimeout).WaitUntilReady(ctx, e)
}

// DefaultSecondAZTimeout bounds WaitForSecondAZ unless the context's deadline is earlier.
const DefaultSecondAZTimeout = 15 * time.Minute

// DefaultStrategies are what Up waits for unless told otherwise: a token, a
// catalog with the core services and the controller's zone. The worker's zone
// is not among them: it joins later (see WaitForSecondAZ).
func DefaultStrategies(cfg Config) []Strategy {
	cfg = cfg.WithDefaults()
	return []Strategy{
		ForKeystoneToken(),
		ForCatalog("identity", "compute", "network", "volumev3", "image"),
		ForAvailabilityZone(cfg.FailureDomain),
	}
}
