//go:build linux

// Package acceptance shows how an OpenStack project outside Cluster API
// (a Terraform provider, a CSI driver, a CLI) writes acceptance tests
// against a two-zone DevStack with plain `go test`: devstack.Up on the local
// host (which reuses a running environment in well under a second),
// gophercloud clients whose HTTP goes through the tunnel, and t.Cleanup for
// everything created. It depends on no Kubernetes package.
//
//	go test ./examples/acceptance/
package acceptance
