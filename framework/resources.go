package framework

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/devstack"
)

// DefaultDeleteTimeout and DefaultDeletePolling bound the deletions
// registered with DeferCleanup by the Create helpers unless their input
// gives intervals.
const (
	DefaultDeleteTimeout = 5 * time.Minute
	DefaultDeletePolling = time.Second
)

func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

var defaultDeleteIntervals = devstack.Intervals{Timeout: DefaultDeleteTimeout, Polling: DefaultDeletePolling}

// deleteIntervals reads an input's DeleteIntervals; none means
// [DefaultDeleteTimeout, DefaultDeletePolling].
func deleteIntervals(helper string, intervals []interface{}) devstack.Intervals {
	if len(intervals) == 0 {
		return defaultDeleteIntervals
	}
	iv, err := ParseIntervals(intervals...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid argument. input.DeleteIntervals of %s", helper)
	return iv
}

// deferDelete registers a cleanup that deletes a resource and waits within
// iv until it is gone, failing the spec with the last state seen otherwise.
func deferDelete(what string, iv devstack.Intervals, del func(context.Context) error, get func(context.Context) (string, error)) {
	ginkgo.DeferCleanup(func(ctx context.Context) {
		delCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := del(delCtx)
		cancel()
		if err != nil && !isNotFound(err) {
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't delete %s", what)
		}
		err = devstack.Poll(ctx, ginkgo.GinkgoLogr, what+" to be deleted", iv, func(ctx context.Context) (string, bool, error) {
			ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
			defer cancel()
			state, err := get(ctx)
			switch {
			case isNotFound(err):
				return "gone", true, nil
			case err != nil:
				return "", false, err
			}
			return "still exists, " + state, false, nil
		})
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Timed out waiting for %s to be deleted", what)
	}, ginkgo.NodeTimeout(attemptTimeout+iv.Timeout+30*time.Second))
}

// waitForStatus polls get within intervals until it returns want; a status
// in fail ends the wait at once with what get says about it.
func waitForStatus(ctx context.Context, what, want string, iv devstack.Intervals, get func(context.Context) (status, detail string, err error), fail ...string) error {
	return devstack.Poll(ctx, ginkgo.GinkgoLogr, what+" to become "+want, iv, func(ctx context.Context) (string, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		status, detail, err := get(ctx)
		if err != nil {
			return "", false, err
		}
		seen := "status " + status
		if detail != "" {
			seen += " (" + detail + ")"
		}
		if slices.Contains(fail, status) {
			return seen, false, devstack.Permanent(fmt.Errorf("%s went to %s", what, seen))
		}
		return seen, status == want, nil
	})
}

// CreateServerInput is the input of CreateServer.
type CreateServerInput struct {
	// Clients are the clients of the cloud to create the server in. Required.
	Clients *devstack.Clients
	// Name is the server's name; prefix it per spec so leak checks can tell
	// this spec's resources from those of parallel specs. Required.
	Name string
	// AvailabilityZone is the zone to boot in (empty: nova's default zone).
	AvailabilityZone string
	// Flavor is the flavor's name (default "m1.tiny").
	Flavor string
	// Image is the image's name (default "stackgate-tiny", which the local
	// host seeds; CAPO's clouds have "cirros-0.6.1-x86_64-disk").
	Image string
	// Networks are the server's networks or ports. Required: the demo
	// project has no network of its own (see CreateTenantNetwork).
	Networks []servers.Network
	// KeyName is the nova key pair whose public key the server authorizes.
	KeyName string
	// UserData is the server's user-data (a #cloud-config, say).
	UserData []byte
	// DeleteIntervals bound the deletion registered with DeferCleanup (use
	// e2eConfig.GetIntervals(spec, "wait-server-deleted"); default
	// [DefaultDeleteTimeout, DefaultDeletePolling]).
	DeleteIntervals []interface{}
}

// CreateServer boots a server, registers its deletion with DeferCleanup (so
// it is deleted on failure and interrupt too) and waits until it is ACTIVE
// within intervals, polling as they say (use e2eConfig.GetIntervals(spec,
// "wait-server-active")); a server that goes to ERROR fails at once.
func CreateServer(ctx context.Context, input CreateServerInput, intervals ...interface{}) *servers.Server {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling CreateServer")
	gomega.Expect(input.Name).NotTo(gomega.BeEmpty(), "Invalid argument. input.Name can't be empty when calling CreateServer")
	iv, err := ParseIntervals(intervals...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid argument. intervals of CreateServer")
	delIv := deleteIntervals("CreateServer", input.DeleteIntervals)
	gomega.Expect(input.Networks).NotTo(gomega.BeEmpty(), "Invalid argument. input.Networks can't be empty when calling CreateServer; create one with CreateTenantNetwork")
	flavor, image := input.Flavor, input.Image
	if flavor == "" {
		flavor = "m1.tiny"
	}
	if image == "" {
		image = "stackgate-tiny"
	}
	c := input.Clients
	flavorID := findFlavor(ctx, c, flavor)
	imageID := findImage(ctx, c, image)
	var opts servers.CreateOptsBuilder = servers.CreateOpts{
		Name: input.Name, FlavorRef: flavorID, ImageRef: imageID,
		AvailabilityZone: input.AvailabilityZone, Networks: input.Networks, UserData: input.UserData,
	}
	if input.KeyName != "" {
		opts = keypairs.CreateOptsExt{CreateOptsBuilder: opts, KeyName: input.KeyName}
	}
	s, err := servers.Create(ctx, c.Compute, opts, nil).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create server %q in availability zone %q", input.Name, input.AvailabilityZone)
	what := fmt.Sprintf("server %q (%s)", input.Name, s.ID)
	deferDelete(what, delIv,
		func(ctx context.Context) error { return servers.Delete(ctx, c.Compute, s.ID).ExtractErr() },
		func(ctx context.Context) (string, error) {
			got, err := servers.Get(ctx, c.Compute, s.ID).Extract()
			if err != nil {
				return "", err
			}
			return "status " + got.Status, nil
		})
	var last *servers.Server
	err = waitForStatus(ctx, what, "ACTIVE", iv, func(ctx context.Context) (string, string, error) {
		got, err := servers.Get(ctx, c.Compute, s.ID).Extract()
		if err != nil {
			return "", "", err
		}
		last = got
		if got.Fault.Message != "" {
			return got.Status, "fault: " + got.Fault.Message, nil
		}
		return got.Status, "", nil
	}, "ERROR")
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Timed out waiting for %s to become ACTIVE", what)
	return last
}

func findFlavor(ctx context.Context, c *devstack.Clients, name string) string {
	pages, err := flavors.ListDetail(c.Compute, flavors.ListOpts{}).AllPages(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't list flavors")
	all, err := flavors.ExtractFlavors(pages)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't read flavors")
	var names []string
	for _, f := range all {
		if f.Name == name || f.ID == name {
			return f.ID
		}
		names = append(names, f.Name)
	}
	ginkgo.Fail(fmt.Sprintf("Flavor %q not found; flavors: %v", name, names))
	return ""
}

func findImage(ctx context.Context, c *devstack.Clients, name string) string {
	pages, err := images.List(c.Image, images.ListOpts{}).AllPages(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't list images")
	all, err := images.ExtractImages(pages)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't read images")
	var names []string
	for _, i := range all {
		if i.Name == name || i.ID == name {
			return i.ID
		}
		names = append(names, i.Name)
	}
	ginkgo.Fail(fmt.Sprintf("Image %q not found; images: %v", name, names))
	return ""
}

// CreateVolumeInput is the input of CreateVolume.
type CreateVolumeInput struct {
	// Clients are the clients of the cloud to create the volume in. Required.
	Clients *devstack.Clients
	// Name is the volume's name, prefixed per spec. Required.
	Name string
	// SizeGiB is the volume's size (default 1).
	SizeGiB int
	// AvailabilityZone is the cinder zone (empty: cinder's default).
	AvailabilityZone string
	// VolumeType is the volume type (empty: the default type).
	VolumeType string
	// DeleteIntervals bound the deletion registered with DeferCleanup (use
	// e2eConfig.GetIntervals(spec, "wait-volume-deleted"); default
	// [DefaultDeleteTimeout, DefaultDeletePolling]).
	DeleteIntervals []interface{}
}

// CreateVolume creates a volume, registers its deletion with DeferCleanup
// and waits until it is available within intervals, polling as they say
// (use e2eConfig.GetIntervals(spec, "wait-volume-available")).
func CreateVolume(ctx context.Context, input CreateVolumeInput, intervals ...interface{}) *volumes.Volume {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling CreateVolume")
	gomega.Expect(input.Name).NotTo(gomega.BeEmpty(), "Invalid argument. input.Name can't be empty when calling CreateVolume")
	iv, err := ParseIntervals(intervals...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid argument. intervals of CreateVolume")
	delIv := deleteIntervals("CreateVolume", input.DeleteIntervals)
	size := input.SizeGiB
	if size == 0 {
		size = 1
	}
	c := input.Clients
	v, err := volumes.Create(ctx, c.BlockStorage, volumes.CreateOpts{
		Name: input.Name, Size: size, AvailabilityZone: input.AvailabilityZone, VolumeType: input.VolumeType,
	}, nil).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create volume %q in availability zone %q", input.Name, input.AvailabilityZone)
	what := fmt.Sprintf("volume %q (%s)", input.Name, v.ID)
	deferDelete(what, delIv,
		func(ctx context.Context) error { return volumes.Delete(ctx, c.BlockStorage, v.ID, nil).ExtractErr() },
		func(ctx context.Context) (string, error) {
			got, err := volumes.Get(ctx, c.BlockStorage, v.ID).Extract()
			if err != nil {
				return "", err
			}
			return "status " + got.Status, nil
		})
	var last *volumes.Volume
	err = waitForStatus(ctx, what, "available", iv, func(ctx context.Context) (string, string, error) {
		got, err := volumes.Get(ctx, c.BlockStorage, v.ID).Extract()
		if err != nil {
			return "", "", err
		}
		last = got
		return got.Status, "", nil
	}, "error")
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Timed out waiting for %s to become available", what)
	return last
}

// TenantNetwork is a network with one subnet, and a router to the external
// network when asked for.
type TenantNetwork struct {
	// Network is the tenant network.
	Network *networks.Network
	// Subnet is its only subnet.
	Subnet *subnets.Subnet
	// Router connects the subnet to the external network (nil unless requested).
	Router *routers.Router
}

// CreateTenantNetworkInput is the input of CreateTenantNetwork.
type CreateTenantNetworkInput struct {
	// Clients are the clients of the cloud to create the network in. Required.
	Clients *devstack.Clients
	// Name prefixes the network, subnet and router names. Required.
	Name string
	// CIDR is the subnet's range. Required.
	CIDR string
	// ExternalNetworkID, when set, adds a router with its gateway on this
	// network and an interface on the subnet (OPENSTACK_EXTERNAL_NETWORK_ID).
	ExternalNetworkID string
}

// CreateTenantNetwork creates a network, a subnet and optionally a router to
// the external network, registering their deletion with DeferCleanup.
func CreateTenantNetwork(ctx context.Context, input CreateTenantNetworkInput) *TenantNetwork {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling CreateTenantNetwork")
	gomega.Expect(input.Name).NotTo(gomega.BeEmpty(), "Invalid argument. input.Name can't be empty when calling CreateTenantNetwork")
	gomega.Expect(input.CIDR).NotTo(gomega.BeEmpty(), "Invalid argument. input.CIDR can't be empty when calling CreateTenantNetwork")
	c := input.Clients
	up := true
	n, err := networks.Create(ctx, c.Network, networks.CreateOpts{Name: input.Name, AdminStateUp: &up}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create network %q", input.Name)
	// Registered first, so it runs after the router and the servers are gone.
	deferDelete(fmt.Sprintf("network %q (%s)", n.Name, n.ID), defaultDeleteIntervals,
		func(ctx context.Context) error { return networks.Delete(ctx, c.Network, n.ID).ExtractErr() },
		func(ctx context.Context) (string, error) {
			got, err := networks.Get(ctx, c.Network, n.ID).Extract()
			if err != nil {
				return "", err
			}
			return "status " + got.Status, nil
		})
	sn, err := subnets.Create(ctx, c.Network, subnets.CreateOpts{
		NetworkID: n.ID, Name: input.Name, CIDR: input.CIDR, IPVersion: gophercloud.IPv4,
	}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create subnet %q (%s) on network %q", input.Name, input.CIDR, input.Name)
	tn := &TenantNetwork{Network: n, Subnet: sn}
	if input.ExternalNetworkID == "" {
		return tn
	}
	r, err := routers.Create(ctx, c.Network, routers.CreateOpts{
		Name: input.Name, GatewayInfo: &routers.GatewayInfo{NetworkID: input.ExternalNetworkID},
	}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create router %q with its gateway on external network %s", input.Name, input.ExternalNetworkID)
	deferDelete(fmt.Sprintf("router %q (%s)", r.Name, r.ID), defaultDeleteIntervals,
		func(ctx context.Context) error {
			_, err := routers.RemoveInterface(ctx, c.Network, r.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract()
			if err != nil && !isNotFound(err) {
				return fmt.Errorf("removing the interface on subnet %s: %w", sn.ID, err)
			}
			return routers.Delete(ctx, c.Network, r.ID).ExtractErr()
		},
		func(ctx context.Context) (string, error) {
			got, err := routers.Get(ctx, c.Network, r.ID).Extract()
			if err != nil {
				return "", err
			}
			return "status " + got.Status, nil
		})
	_, err = routers.AddInterface(ctx, c.Network, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't attach subnet %q to router %q", input.Name, input.Name)
	tn.Router = r
	return tn
}

// CreatePortInput is the input of CreatePort.
type CreatePortInput struct {
	// Clients are the clients of the cloud to create the port in. Required.
	Clients *devstack.Clients
	// Name is the port's name, prefixed per spec. Required.
	Name string
	// NetworkID is the port's network. Required.
	NetworkID string
}

// CreatePort creates a port and registers its deletion with DeferCleanup.
func CreatePort(ctx context.Context, input CreatePortInput) *ports.Port {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling CreatePort")
	gomega.Expect(input.Name).NotTo(gomega.BeEmpty(), "Invalid argument. input.Name can't be empty when calling CreatePort")
	gomega.Expect(input.NetworkID).NotTo(gomega.BeEmpty(), "Invalid argument. input.NetworkID can't be empty when calling CreatePort")
	c := input.Clients
	p, err := ports.Create(ctx, c.Network, ports.CreateOpts{Name: input.Name, NetworkID: input.NetworkID}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create port %q on network %s", input.Name, input.NetworkID)
	deferDelete(fmt.Sprintf("port %q (%s)", p.Name, p.ID), defaultDeleteIntervals,
		func(ctx context.Context) error { return ports.Delete(ctx, c.Network, p.ID).ExtractErr() },
		func(ctx context.Context) (string, error) {
			got, err := ports.Get(ctx, c.Network, p.ID).Extract()
			if err != nil {
				return "", err
			}
			return "status " + got.Status, nil
		})
	return p
}

// CreateFloatingIPInput is the input of CreateFloatingIP.
type CreateFloatingIPInput struct {
	// Clients are the clients of the cloud to create the floating IP in. Required.
	Clients *devstack.Clients
	// ExternalNetworkID is the network to allocate from. Required.
	ExternalNetworkID string
	// PortID is the port to associate the address with (optional).
	PortID string
	// Description tags the floating IP for leak checks: a floating IP's name
	// is its address, so give it the spec's prefix (see FilterByPrefix). The
	// port it is associated with attributes it too, but only while both
	// exist.
	Description string
}

// CreateFloatingIP allocates a floating IP, associated with a port when
// given, and registers its release with DeferCleanup.
func CreateFloatingIP(ctx context.Context, input CreateFloatingIPInput) *floatingips.FloatingIP {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling CreateFloatingIP")
	gomega.Expect(input.ExternalNetworkID).NotTo(gomega.BeEmpty(), "Invalid argument. input.ExternalNetworkID can't be empty when calling CreateFloatingIP")
	c := input.Clients
	fip, err := floatingips.Create(ctx, c.Network, floatingips.CreateOpts{
		FloatingNetworkID: input.ExternalNetworkID, PortID: input.PortID, Description: input.Description,
	}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't allocate a floating IP on network %s for port %q", input.ExternalNetworkID, input.PortID)
	deferDelete(fmt.Sprintf("floating IP %s (%s)", fip.FloatingIP, fip.ID), defaultDeleteIntervals,
		func(ctx context.Context) error { return floatingips.Delete(ctx, c.Network, fip.ID).ExtractErr() },
		func(ctx context.Context) (string, error) {
			got, err := floatingips.Get(ctx, c.Network, fip.ID).Extract()
			if err != nil {
				return "", err
			}
			return "status " + got.Status, nil
		})
	return fip
}

// CreateKeyPairInput is the input of CreateKeyPair.
type CreateKeyPairInput struct {
	// Clients are the clients of the cloud to create the key pair in. Required.
	Clients *devstack.Clients
	// Name is the key pair's name; prefix it per spec. Required.
	Name string
	// PublicKey is the key servers booted with the pair authorize. Required.
	PublicKey ssh.PublicKey
}

// CreateKeyPair registers a public key with nova as a key pair (what
// CreateServerInput.KeyName names) and registers its deletion with
// DeferCleanup.
func CreateKeyPair(ctx context.Context, input CreateKeyPairInput) *keypairs.KeyPair {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling CreateKeyPair")
	gomega.Expect(input.Name).NotTo(gomega.BeEmpty(), "Invalid argument. input.Name can't be empty when calling CreateKeyPair")
	gomega.Expect(input.PublicKey).NotTo(gomega.BeNil(), "Invalid argument. input.PublicKey can't be nil when calling CreateKeyPair")
	c := input.Clients
	kp, err := keypairs.Create(ctx, c.Compute, keypairs.CreateOpts{Name: input.Name, PublicKey: string(ssh.MarshalAuthorizedKey(input.PublicKey))}).Extract()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't create key pair %q", input.Name)
	deferDelete(fmt.Sprintf("key pair %q", kp.Name), defaultDeleteIntervals,
		func(ctx context.Context) error { return keypairs.Delete(ctx, c.Compute, kp.Name, nil).ExtractErr() },
		func(ctx context.Context) (string, error) {
			if _, err := keypairs.Get(ctx, c.Compute, kp.Name, nil).Extract(); err != nil {
				return "", err
			}
			return "present", nil
		})
	return kp
}
