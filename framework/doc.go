// Package framework is the Ginkgo and Gomega glue for suites that test
// against a DevStack environment: CAPO's test/e2e, stackgate's own suites and
// any other importer. Helpers follow the Cluster API test framework's style:
// waits take intervals from the e2e configuration
// (clusterctl.E2EConfig.GetIntervals), and cluster templates are prepared as
// plain bytes before clusterctl renders them.
//
// Import it as sgframework, beside Cluster API's test/framework:
//
//	import sgframework "github.com/stackgate/stackgate/framework"
//
// A minimal use: load the e2e configuration and pin a cluster template to
// the first availability zone.
//
//	conf, err := sgframework.LoadE2EConfig(ctx, "") // the embedded data/e2e_conf.yaml
//	Expect(err).NotTo(HaveOccurred())
//	tmpl, err := os.ReadFile("cluster-template.yaml")
//	Expect(err).NotTo(HaveOccurred())
//	pinned, err := sgframework.PinToFailureDomain(tmpl, conf.MustGetVariable("OPENSTACK_FAILURE_DOMAIN"))
//	Expect(err).NotTo(HaveOccurred())
//
// Templates whose content spreads machines over several zones (two zones,
// ${OPENSTACK_FAILURE_DOMAIN_ALT}, another zone) are refused with an error
// matching ErrMultiAZ, never rewritten; templates that carry the annotation
// stackgate.io/multi-az: "true" (MultiAZAnnotation) are left alone.
package framework
