//go:build linux

package local

import (
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the volume backend's readiness", func() {
	// Shapes of `ceph status --format json` (Ceph 16), cut to the fields read.
	const ready = `{"osdmap":{"num_osds":1,"num_up_osds":1,"num_in_osds":1},"mgrmap":{"available":true},
		"pgmap":{"num_pgs":33,"pgs_by_state":[{"state_name":"active+clean","count":33}]}}`
	const peering = `{"osdmap":{"num_osds":1,"num_up_osds":1,"num_in_osds":1},"mgrmap":{"available":true},
		"pgmap":{"num_pgs":33,"pgs_by_state":[{"state_name":"active+clean","count":30},{"state_name":"creating+peering","count":3}]}}`
	const noMgr = `{"osdmap":{"num_osds":1,"num_up_osds":1,"num_in_osds":1},"mgrmap":{"available":false},"pgmap":{"num_pgs":0,"pgs_by_state":[]}}`
	const osdDown = `{"osdmap":{"num_osds":1,"num_up_osds":0,"num_in_osds":1},"mgrmap":{"available":true},
		"pgmap":{"num_pgs":33,"pgs_by_state":[{"state_name":"stale+active+clean","count":33}]}}`

	DescribeTable("is the OSD up, a manager active and every placement group active",
		func(status string, want bool, seen string) {
			ok, got := cephReady(status)
			Expect(ok).To(Equal(want))
			Expect(got).To(Equal(seen))
		},
		Entry("ready", ready, true, "osds up 1 in 1, mgr available true, pgs 33 (33 active+clean)"),
		Entry("placement groups still peering", peering, false, "osds up 1 in 1, mgr available true, pgs 33 (30 active+clean, 3 creating+peering)"),
		Entry("no manager yet: nothing reports placement groups", noMgr, false, "osds up 1 in 1, mgr available false, pgs 0 ()"),
		Entry("the OSD down", osdDown, false, "osds up 0 in 1, mgr available true, pgs 33 (33 stale+active+clean)"),
	)

	It("says why it cannot read the status", func() {
		ok, seen := cephReady("Error initializing cluster client")
		Expect(ok).To(BeFalse())
		Expect(seen).To(HavePrefix("ceph status: invalid character"))
	})

	It("makes version 4 UUIDs, as ceph osd new takes them", func() {
		a, err := newUUID()
		Expect(err).NotTo(HaveOccurred())
		b, err := newUUID()
		Expect(err).NotTo(HaveOccurred())
		Expect(a).NotTo(Equal(b))
		Expect(regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(a)).To(BeTrue(), a)
	})
})
