// Package suites holds stackgate's own Ginkgo suites, run against a DevStack
// environment (the local host by default) with `make e2e` or
// `ginkgo -focus multi-az ./suites/...`, where ginkgo is
// `go run github.com/onsi/ginkgo/v2/ginkgo` as in the Makefile (or
// `go install github.com/onsi/ginkgo/v2/ginkgo@v2.34.0`):
//
//   - smoke: specs that need only the first availability zone; they start
//     while the worker is still joining.
//   - multiaz: specs that wait for the second availability zone.
//
// Every suite brings the environment up once in SynchronizedBeforeSuite
// (framework.SetupDevStack) and shares it between parallel processes; the
// suite-level nodes that do so are registered by internal/e2esuite, so a
// new suite's test file is a call to e2esuite.Register and its TestXxx.
package suites
