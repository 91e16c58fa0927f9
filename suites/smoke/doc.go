// Package smoke is a Ginkgo suite of specs that need only the first
// availability zone (testaz1): a keystone token and catalog, a network with a
// router, a server in testaz1, and a check that the leak check lists what a
// spec left behind. They run while the worker is still joining; the report
// of each spec in the "smoke" container says whether the second zone was
// usable when it started.
//
//	go run github.com/onsi/ginkgo/v2/ginkgo -p ./suites/smoke
package smoke
