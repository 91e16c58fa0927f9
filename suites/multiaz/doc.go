// Package multiaz is a Ginkgo suite of specs that need both availability
// zones: each waits for the worker's zone first (framework.WaitForSecondAZ),
// then boots servers and volumes in both zones, checks pinned cluster
// templates, and reaches a server with a floating IP through the bastion
// dialer.
//
//	go run github.com/onsi/ginkgo/v2/ginkgo -focus multi-az ./suites/...
package multiaz
