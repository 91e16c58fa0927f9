// Package examples holds examples for projects that import stackgate.
// examples/acceptance is a plain `go test` acceptance test, as an OpenStack
// project outside Cluster API would write one, using only the devstack,
// devstack/local and tunnel packages; this package's test checks that it
// pulls in no Kubernetes or Cluster API package.
package examples
