package devstack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
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
// security groups, volumes, load balancers and images of every project.
func (e *Environment) Snapshot(ctx context.Context) (*Snapshot, error) {
	c, err := e.Clients(ctx, e.Config.WithDefaults().CloudAdmin)
	if err != nil {
		return nil, fmt.Errorf("leak check: %w", err)
	}
	s := &Snapshot{Resources: map[string]map[string]Resource{}}
	add := func(r Resource) {
		if s.Resources[r.Kind] == nil {
			s.Resources[r.Kind] = map[string]Resource{}
		}
		s.Resources[r.Kind][r.ID] = r
	}
	var errs []error
	fail := func(kind string, err error) { errs = append(errs, fmt.Errorf("listing %ss: %w", kind, err)) }

	if p, err := servers.List(c.Compute, servers.ListOpts{AllTenants: true}).AllPages(ctx); err != nil {
		fail(KindServer, err)
	} else if l, err := servers.ExtractServers(p); err != nil {
		fail(KindServer, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindServer, ID: r.ID, Name: r.Name, Project: r.TenantID})
		}
	}
	if p, err := ports.List(c.Network, nil).AllPages(ctx); err != nil {
		fail(KindPort, err)
	} else if l, err := ports.ExtractPorts(p); err != nil {
		fail(KindPort, err)
	} else {
		for _, r := range l {
			name := r.Name
			if name == "" {
				name = r.DeviceOwner
			}
			add(Resource{Kind: KindPort, ID: r.ID, Name: name, Description: r.Description, NetworkID: r.NetworkID, DeviceID: r.DeviceID, Project: r.ProjectID})
		}
	}
	if p, err := networks.List(c.Network, nil).AllPages(ctx); err != nil {
		fail(KindNetwork, err)
	} else if l, err := networks.ExtractNetworks(p); err != nil {
		fail(KindNetwork, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindNetwork, ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID})
		}
	}
	if p, err := routers.List(c.Network, routers.ListOpts{}).AllPages(ctx); err != nil {
		fail(KindRouter, err)
	} else if l, err := routers.ExtractRouters(p); err != nil {
		fail(KindRouter, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindRouter, ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID})
		}
	}
	if p, err := floatingips.List(c.Network, floatingips.ListOpts{}).AllPages(ctx); err != nil {
		fail(KindFloatingIP, err)
	} else if l, err := floatingips.ExtractFloatingIPs(p); err != nil {
		fail(KindFloatingIP, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindFloatingIP, ID: r.ID, Name: r.FloatingIP, Description: r.Description, PortID: r.PortID, Project: r.ProjectID})
		}
	}
	if p, err := groups.List(c.Network, groups.ListOpts{}).AllPages(ctx); err != nil {
		fail(KindSecurityGroup, err)
	} else if l, err := groups.ExtractGroups(p); err != nil {
		fail(KindSecurityGroup, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindSecurityGroup, ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID})
		}
	}
	if p, err := volumes.List(c.BlockStorage, volumes.ListOpts{AllTenants: true}).AllPages(ctx); err != nil {
		fail(KindVolume, err)
	} else if l, err := volumes.ExtractVolumes(p); err != nil {
		fail(KindVolume, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindVolume, ID: r.ID, Name: r.Name, Description: r.Description, Project: r.TenantID})
		}
	}
	if c.LoadBalancer != nil {
		if p, err := loadbalancers.List(c.LoadBalancer, nil).AllPages(ctx); err != nil {
			fail(KindLoadBalancer, err)
		} else if l, err := loadbalancers.ExtractLoadBalancers(p); err != nil {
			fail(KindLoadBalancer, err)
		} else {
			for _, r := range l {
				add(Resource{Kind: KindLoadBalancer, ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID})
			}
		}
	}
	if p, err := images.List(c.Image, images.ListOpts{}).AllPages(ctx); err != nil {
		fail(KindImage, err)
	} else if l, err := images.ExtractImages(p); err != nil {
		fail(KindImage, err)
	} else {
		for _, r := range l {
			add(Resource{Kind: KindImage, ID: r.ID, Name: r.Name, Project: r.Owner})
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
