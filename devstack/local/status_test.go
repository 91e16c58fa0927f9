//go:build linux

package local_test

import (
	"context"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

// serversOn returns the number of servers Status counts on compute host h.
func serversOn(ctx context.Context, h string) (int, error) {
	s, err := host.Status(ctx)
	if err != nil {
		return 0, err
	}
	for _, z := range s.Zones {
		for _, zh := range z.Hosts {
			if z.Service == "compute" && zh.Host == h {
				return zh.Servers, nil
			}
		}
	}
	return 0, StopTrying("no compute host " + h + " in " + s.String())
}

var _ = Describe("the status of the local environment", func() {
	BeforeEach(needEnv, NodeTimeout(20*time.Minute))

	cfg := devstack.DefaultConfig()

	It("names each availability zone of servers and volumes with its host and state", func(ctx SpecContext) {
		up := func(service, zone, host string) local.Zone {
			return local.Zone{Service: service, Name: zone, Hosts: []local.ZoneHost{{Host: host, State: "up", Status: "enabled"}}}
		}
		// The worker joins after Up returned. Servers of other specs come
		// and go: their count is the next spec's.
		Eventually(func(ctx context.Context) ([]local.Zone, error) {
			s, err := host.Status(ctx)
			if err != nil {
				return nil, err
			}
			for i := range s.Zones {
				for j := range s.Zones[i].Hosts {
					s.Zones[i].Hosts[j].Servers = 0
				}
			}
			return s.Zones, nil
		}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(2 * time.Second).Should(Equal([]local.Zone{
			up("compute", cfg.FailureDomain, "controller"), up("compute", cfg.FailureDomainAlt, "worker"),
			up("volume", cfg.FailureDomain, "controller@ceph"), up("volume", cfg.FailureDomainAlt, "worker@ceph"),
		}))
		s := must(host.Status(ctx))
		Expect(s.ZonesError).To(BeEmpty())
		Expect(s.String()).To(And(
			MatchRegexp(`zone compute\s+`+cfg.FailureDomain+`\s+available\s+controller up, enabled, servers \d+`),
			MatchRegexp(`zone compute\s+`+cfg.FailureDomainAlt+`\s+available\s+worker up, enabled, servers \d+`),
			MatchRegexp(`zone volume\s+`+cfg.FailureDomain+`\s+available\s+controller@ceph up, enabled`),
			MatchRegexp(`zone volume\s+`+cfg.FailureDomainAlt+`\s+available\s+worker@ceph up, enabled`),
		))
	}, SpecTimeout(7*time.Minute))

	It("counts the servers on each compute host", func(ctx SpecContext) {
		admin := cloudClient(ctx, env, tun, cfg.CloudAdmin)
		compute := must(openstack.NewComputeV2(admin, eo()))
		compute.Microversion = "2.37"
		image := must(openstack.NewImageV2(admin, eo()))
		var flavorID string
		for _, f := range must(flavors.ExtractFlavors(must(flavors.ListDetail(compute, nil).AllPages(ctx)))) {
			if f.Name == "m1.tiny" {
				flavorID = f.ID
			}
		}
		Expect(flavorID).NotTo(BeEmpty(), "flavor m1.tiny")
		imgs := must(images.ExtractImages(must(images.List(image, images.ListOpts{Name: "stackgate-tiny"}).AllPages(ctx))))
		Expect(imgs).To(HaveLen(1), "image stackgate-tiny")

		before := must(serversOn(ctx, "worker"))
		srv := must(servers.Create(ctx, compute, servers.CreateOpts{
			Name: name("status"), FlavorRef: flavorID, ImageRef: imgs[0].ID,
			AvailabilityZone: cfg.FailureDomainAlt, Networks: "none",
		}, nil).Extract())
		gone := func(ctx context.Context) {
			if err := servers.Delete(ctx, compute, srv.ID).ExtractErr(); err != nil && !isNotFound(err) {
				Expect(err).NotTo(HaveOccurred(), "deleting server %s", srv.ID)
			}
			Eventually(func(ctx context.Context) error { return servers.Get(ctx, compute, srv.ID).Err }).WithContext(ctx).
				WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Satisfy(isNotFound), "server %s deleted", srv.ID)
		}
		DeferCleanup(func(ctx SpecContext) { gone(ctx) })
		// nova's resource tracker updates running_vms once a minute.
		Eventually(serversOn).WithArguments("worker").WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(2*time.Second).
			Should(Equal(before+1), "servers on worker once server %s was created there", srv.ID)
		gone(ctx)
		Eventually(serversOn).WithArguments("worker").WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(2*time.Second).
			Should(Equal(before), "servers on worker once server %s was deleted", srv.ID)
	}, SpecTimeout(10*time.Minute))
})
