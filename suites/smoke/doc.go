// Package smoke is a Ginkgo suite of specs that need only the first
// availability zone (testaz1): a keystone token and catalog, a network with a
// router, a server in testaz1. They run while the worker is still joining;
// each spec's report says whether the second zone was usable when it started.
//
//	go run github.com/onsi/ginkgo/v2/ginkgo -p ./suites/smoke
package smoke
