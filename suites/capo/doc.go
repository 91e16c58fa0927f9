// Package capo runs Cluster API Provider OpenStack's own controllers, with
// Cluster API's, against the DevStack environment: a management cluster
// without kind (framework/mgmtcluster: envtest's kube-apiserver and the real
// managers built from the Go module proxy by hack/capi/build.sh), CAPO's
// own e2e cluster templates at the pinned release, and assertions on what
// CAPO builds in OpenStack: where its servers land, the failure domains it
// reports, and that deleting the Cluster leaves nothing.
//
//	ginkgo -focus capo ./suites/capo
//
// No node ever joins a workload cluster here (the local host's servers have
// no VM behind them by default), so the control plane never initialises: the
// specs assert up to the servers and say so in their report.
package capo
