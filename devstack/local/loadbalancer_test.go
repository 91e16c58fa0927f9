package local_test

import (
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("load balancers of the tenant user", func() {
	cfg := devstack.DefaultConfig()

	It("lists them with the roles DevStack gives the demo user", func(ctx SpecContext) {
		lbc := must(openstack.NewLoadBalancerV2(cloudClient(ctx, env, tun, cfg.Cloud), eo()))
		_, err := loadbalancers.List(lbc, nil).AllPages(ctx)
		Expect(err).NotTo(HaveOccurred(), "as %s: GET /v2/lbaas/loadbalancers", cfg.Cloud)
	}, SpecTimeout(2*time.Minute))
})
