package devstack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Kinds of resources the leak check compares.
const (
	KindServer        = "server"
	KindPort          = "port"
	KindNetwork       = "network"
	KindRouter        = "router"
	KindFloatingIP    = "floating IP"
	KindSecurityGroup = "security group"
	KindVolume        = "volume"
	KindLoadBalancer  = "load balancer"
	KindImage         = "image"
)

// Resource is one OpenStack resource of any kind.
type Resource struct {
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// ID is the resource's UUID.
	ID string `json:"id"`
	// Name is the resource's name (for a floating IP, its address; for an
	// unnamed port, its device owner, such as "network:dhcp").
	Name string `json:"name"`
	// Description is the resource's description, where its kind has one
	// (floating IPs, ports, networks, routers, security groups, volumes,
	// load balancers).
	Description string `json:"description,omitempty"`
	// NetworkID is a port's network.
	NetworkID string `json:"networkID,omitempty"`
	// DeviceID is what a port is attached to: a server, a router, a
	// floating IP (for its own port), a DHCP agent.
	DeviceID string `json:"deviceID,omitempty"`
	// PortID is the port a floating IP is associated with.
	PortID string `json:"portID,omitempty"`
	// Project is the ID of the project that owns it.
	Project string `json:"project,omitempty"`
}

// String gives the resource's kind, name, description (when it has one),
// ID and project.
func (r Resource) String() string {
	if r.Description != "" {
		return fmt.Sprintf("%s %q, described %q (%s, project %s)", r.Kind, r.Name, r.Description, r.ID, r.Project)
	}
	return fmt.Sprintf("%s %q (%s, project %s)", r.Kind, r.Name, r.ID, r.Project)
}

// PartOf returns the IDs of the resources r is part of, as far as OpenStack
// still records them: a port's network and device, a floating IP's port.
// Leak checks attribute an unnamed resource through them.
func (r Resource) PartOf() []string {
	var out []string
	for _, id := range []string{r.NetworkID, r.DeviceID, r.PortID} {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// Snapshot is the set of resources that existed at one moment, across every
// project, as the admin cloud sees them.
type Snapshot struct {
	// Resources are keyed by kind, then ID.
	Resources map[string]map[string]Resource `json:"resources"`
}

// LeakError lists resources that were created after a snapshot and not deleted.
type LeakError struct {
	// Leaked are the resources, sorted by kind and name.
	Leaked []Resource
}

// Error gives the number of resources left behind and lists each one.
func (e *LeakError) Error() string {
	parts := make([]string, len(e.Leaked))
	for i, r := range e.Leaked {
		parts[i] = r.String()
	}
	return fmt.Sprintf("%d resources left behind: %s", len(e.Leaked), strings.Join(parts, "; "))
}

// Snapshot lists the servers, ports, networks, routers, floating IPs,
// security groups, volumes, load balancers and images of every project: the
// kinds with a Kind in the table the resource dumps come from too.
func (e *Environment) Snapshot(ctx context.Context) (*Snapshot, error) {
	c, err := e.Clients(ctx, e.Config.WithDefaults().CloudAdmin)
	if err != nil {
		return nil, fmt.Errorf("leak check: %w", err)
	}
	s := &Snapshot{Resources: map[string]map[string]Resource{}}
	var errs []error
	for _, k := range resourceKinds {
		sc := k.service(c)
		if k.kind == "" || sc == nil { // a cloud without octavia has no load balancers to leak
			continue
		}
		_, rs, err := k.list(ctx, sc)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %ss: %w", k.kind, err))
			continue
		}
		byID := map[string]Resource{}
		for _, r := range rs {
			byID[r.ID] = r
		}
		if len(byID) > 0 {
			s.Resources[k.kind] = byID
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("leak check: %w", err)
	}
	return s, nil
}

// Leaks lists what exists now and did not exist in before; a non-empty
// list is also returned as a *LeakError.
func (e *Environment) Leaks(ctx context.Context, before *Snapshot) ([]Resource, error) {
	if before == nil {
		return nil, errors.New("leak check: no snapshot to compare with; call Snapshot before the test")
	}
	now, err := e.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	leaked := Diff(before, now)
	if len(leaked) > 0 {
		return leaked, &LeakError{Leaked: leaked}
	}
	return nil, nil
}

// Diff returns the resources in after that are not in before, sorted by kind and name.
func Diff(before, after *Snapshot) []Resource {
	var out []Resource
	for kind, byID := range after.Resources {
		for id, r := range byID {
			if _, ok := before.Resources[kind][id]; !ok {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}
