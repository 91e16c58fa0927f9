// Package capo runs Cluster API Provider OpenStack's own controllers, with
// Cluster API's, against the DevStack environment: a management cluster
// without kind (framework/mgmtcluster: envtest's kube-apiserver and the real
// managers built from the Go module proxy by hack/capi/build.sh), CAPO's
// own e2e cluster templates at the pinned release, and assertions on what
// CAPO builds in OpenStack:
//
//   - the without-lb and default flavors, pinned to the first zone with
//     framework.PinToFailureDomain: every server in that zone, both zones in
//     the cluster's failure domains, the bastion answering SSH through
//     framework.BastionDialer, and (default) the API server's load balancer
//     with the control plane endpoint's floating IP on its VIP port;
//   - the multi-az flavor, unpinned, as CAPO's multi-AZ spec runs it: the
//     machines in the zones the flavor asks, the control plane server's root
//     and extra volumes in its zone with the default volume type, and the
//     OpenStackMachine's condition once the server is deleted behind CAPO's
//     back;
//   - deleting the Cluster leaves nothing in OpenStack.
//
// Run it with:
//
//	ginkgo -focus capo ./suites/capo
//
// No node ever joins a workload cluster here (the guest image runs no
// kubelet), so the control plane never initialises: the specs assert up to
// the servers and say so in their report.
package capo
