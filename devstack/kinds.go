package devstack

import (
	"context"

	"github.com/gophercloud/gophercloud/v2"
	blockazs "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	blockservices "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	computeazs "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	computeservices "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/agents"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// resourceKind is one kind of resource the admin cloud lists: the leak
// check compares those with a Kind (Snapshot), the log collection dumps
// those with a dump name (openstack/<dump>.json).
type resourceKind struct {
	// kind is the Kind constant of the leak check; "" leaves the kind out of it.
	kind string
	// dump names the dump; "" leaves the kind out of the dumps.
	dump string
	// service is the client that lists it; nil when the catalog lacks it.
	service func(*Clients) *gophercloud.ServiceClient
	// list returns every resource as the API gave it (for the dump) and, for
	// a kind with a Kind, as Resources.
	list func(ctx context.Context, sc *gophercloud.ServiceClient) (any, []Resource, error)
}

// kindOf builds a resourceKind from a gophercloud pager and extractor; res
// (nil for kinds the leak check leaves out) turns one item into a Resource.
func kindOf[T any](kind, dump string, service func(*Clients) *gophercloud.ServiceClient,
	pager func(*gophercloud.ServiceClient) pagination.Pager, extract func(pagination.Page) ([]T, error), res func(T) Resource) resourceKind {
	return resourceKind{kind: kind, dump: dump, service: service, list: func(ctx context.Context, sc *gophercloud.ServiceClient) (any, []Resource, error) {
		pages, err := pager(sc).AllPages(ctx)
		if err != nil {
			return nil, nil, err
		}
		items, err := extract(pages)
		if err != nil {
			return nil, nil, err
		}
		var rs []Resource
		if res != nil {
			rs = make([]Resource, len(items))
			for i, it := range items {
				rs[i] = res(it)
				rs[i].Kind = kind
			}
		}
		return items, rs, nil
	}}
}

func compute(c *Clients) *gophercloud.ServiceClient      { return c.Compute }
func network(c *Clients) *gophercloud.ServiceClient      { return c.Network }
func blockStorage(c *Clients) *gophercloud.ServiceClient { return c.BlockStorage }
func image(c *Clients) *gophercloud.ServiceClient        { return c.Image }
func loadBalancer(c *Clients) *gophercloud.ServiceClient { return c.LoadBalancer }

// resourceKinds is every kind the leak check compares and the dumps list,
// in the order the dumps are written.
var resourceKinds = []resourceKind{
	kindOf(KindServer, "servers", compute,
		func(sc *gophercloud.ServiceClient) pagination.Pager {
			return servers.List(sc, servers.ListOpts{AllTenants: true})
		}, servers.ExtractServers,
		func(r servers.Server) Resource { return Resource{ID: r.ID, Name: r.Name, Project: r.TenantID} }),
	kindOf(KindNetwork, "networks", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return networks.List(sc, nil) }, networks.ExtractNetworks,
		func(r networks.Network) Resource {
			return Resource{ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID}
		}),
	kindOf("", "subnets", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return subnets.List(sc, nil) }, subnets.ExtractSubnets, nil),
	kindOf(KindRouter, "routers", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return routers.List(sc, routers.ListOpts{}) }, routers.ExtractRouters,
		func(r routers.Router) Resource {
			return Resource{ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID}
		}),
	kindOf(KindPort, "ports", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return ports.List(sc, nil) }, ports.ExtractPorts,
		func(r ports.Port) Resource {
			name := r.Name
			if name == "" {
				name = r.DeviceOwner
			}
			return Resource{ID: r.ID, Name: name, Description: r.Description, NetworkID: r.NetworkID, DeviceID: r.DeviceID, Project: r.ProjectID}
		}),
	kindOf(KindFloatingIP, "floating-ips", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager {
			return floatingips.List(sc, floatingips.ListOpts{})
		}, floatingips.ExtractFloatingIPs,
		func(r floatingips.FloatingIP) Resource {
			return Resource{ID: r.ID, Name: r.FloatingIP, Description: r.Description, PortID: r.PortID, Project: r.ProjectID}
		}),
	kindOf(KindSecurityGroup, "security-groups", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return groups.List(sc, groups.ListOpts{}) }, groups.ExtractGroups,
		func(r groups.SecGroup) Resource {
			return Resource{ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID}
		}),
	kindOf(KindVolume, "volumes", blockStorage,
		func(sc *gophercloud.ServiceClient) pagination.Pager {
			return volumes.List(sc, volumes.ListOpts{AllTenants: true})
		}, volumes.ExtractVolumes,
		func(r volumes.Volume) Resource {
			return Resource{ID: r.ID, Name: r.Name, Description: r.Description, Project: r.TenantID}
		}),
	kindOf(KindImage, "", image,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return images.List(sc, images.ListOpts{}) }, images.ExtractImages,
		func(r images.Image) Resource { return Resource{ID: r.ID, Name: r.Name, Project: r.Owner} }),
	kindOf("", "compute-availability-zones", compute,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return computeazs.ListDetail(sc) }, computeazs.ExtractAvailabilityZones, nil),
	kindOf("", "volume-availability-zones", blockStorage,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return blockazs.List(sc) }, blockazs.ExtractAvailabilityZones, nil),
	kindOf("", "hypervisors", compute,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return hypervisors.List(sc, nil) }, hypervisors.ExtractHypervisors, nil),
	kindOf("", "compute-services", compute,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return computeservices.List(sc, nil) }, computeservices.ExtractServices, nil),
	kindOf("", "volume-services", blockStorage,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return blockservices.List(sc, nil) }, blockservices.ExtractServices, nil),
	kindOf("", "network-agents", network,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return agents.List(sc, nil) }, agents.ExtractAgents, nil),
	kindOf(KindLoadBalancer, "load-balancers", loadBalancer,
		func(sc *gophercloud.ServiceClient) pagination.Pager { return loadbalancers.List(sc, nil) }, loadbalancers.ExtractLoadBalancers,
		func(r loadbalancers.LoadBalancer) Resource {
			return Resource{ID: r.ID, Name: r.Name, Description: r.Description, Project: r.ProjectID}
		}),
}
