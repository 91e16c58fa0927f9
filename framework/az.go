package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

// WaitForSecondAZInput is the input of WaitForSecondAZ.
type WaitForSecondAZInput struct {
	// DevStack is the environment whose worker is joining. Required.
	DevStack *DevStack
	// AvailabilityZone is the zone to wait for (default the environment's
	// FailureDomainAlt, OPENSTACK_FAILURE_DOMAIN_ALT).
	AvailabilityZone string
}

// WaitForSecondAZ waits until the worker's availability zone is usable, as
// devstack.ForAvailabilityZone checks it: a nova zone with a host whose
// nova-compute is available and active, a placement allocation candidate for
// a one-vCPU server in the zone's host aggregates, and a cinder zone with a
// cinder-volume up and enabled. It waits within intervals, polling as they
// say (use e2eConfig.GetIntervals(spec, "wait-alt-az")); the spec fails with what was
// seen last when it does not. It returns how long it waited and records it
// in the spec's report.
func WaitForSecondAZ(ctx context.Context, input WaitForSecondAZInput, intervals ...interface{}) time.Duration {
	gomega.Expect(input.DevStack).NotTo(gomega.BeNil(), "Invalid argument. input.DevStack can't be nil when calling WaitForSecondAZ")
	az := input.AvailabilityZone
	if az == "" {
		az = input.DevStack.Config().FailureDomainAlt
	}
	iv, err := ParseIntervals(intervals...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid intervals for WaitForSecondAZ")
	start := time.Now()
	err = devstack.ForAvailabilityZone(az).WithIntervals(iv).WaitUntilReady(ctx, input.DevStack.Environment)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Availability zone %q of DevStack %q did not become usable", az, input.DevStack.Config().Name)
	waited := time.Since(start)
	ginkgo.AddReportEntry("second AZ ready", fmt.Sprintf("%s usable after waiting %s (%s after setup started)", az,
		waited.Round(time.Millisecond), time.Since(input.DevStack.SetupStarted).Round(time.Millisecond)))
	return waited
}

// AZUsable looks once, without waiting, whether az is usable now, with the
// same check WaitForSecondAZ and devstack.ForAvailabilityZone poll: a nova
// zone with a compute host whose nova-compute is available and active, a
// placement allocation candidate in the zone's host aggregates, and a
// cinder-volume service up and enabled in the zone. It returns what it saw.
// Specs that need only the first zone use it to record that they ran before
// the second one was ready.
func AZUsable(ctx context.Context, d *DevStack, az string) (bool, string) {
	ok, seen, err := devstack.ForAvailabilityZone(az).Check(ctx, d.Environment)
	if err != nil {
		return false, "error: " + err.Error()
	}
	return ok, seen
}

// ExpectServersInAZInput is the input of ExpectServersInAZ.
type ExpectServersInAZInput struct {
	// Clients are the clients of a cloud that can see the servers. Required.
	Clients *devstack.Clients
	// ServerIDs are the servers to check. Required.
	ServerIDs []string
	// AvailabilityZone is where every server must be. Required.
	AvailabilityZone string
}

// ExpectServersInAZ fails the spec unless every server is in the
// availability zone, naming each one that is not.
func ExpectServersInAZ(ctx context.Context, input ExpectServersInAZInput) {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling ExpectServersInAZ")
	gomega.Expect(input.ServerIDs).NotTo(gomega.BeEmpty(), "Invalid argument. input.ServerIDs can't be empty when calling ExpectServersInAZ")
	gomega.Expect(input.AvailabilityZone).NotTo(gomega.BeEmpty(), "Invalid argument. input.AvailabilityZone can't be empty when calling ExpectServersInAZ")
	var wrong []string
	for _, id := range input.ServerIDs {
		s, err := servers.Get(ctx, input.Clients.Compute, id).Extract()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't get server %s", id)
		if s.AvailabilityZone != input.AvailabilityZone {
			wrong = append(wrong, fmt.Sprintf("server %q (%s) is in %q", s.Name, s.ID, s.AvailabilityZone))
		}
	}
	gomega.Expect(wrong).To(gomega.BeEmpty(), "Servers outside availability zone %q: %s", input.AvailabilityZone, strings.Join(wrong, "; "))
}

// ExpectVolumesInAZInput is the input of ExpectVolumesInAZ.
type ExpectVolumesInAZInput struct {
	// Clients are the clients of a cloud that can see the volumes. Required.
	Clients *devstack.Clients
	// VolumeIDs are the volumes to check. Required.
	VolumeIDs []string
	// AvailabilityZone is where every volume must be. Required.
	AvailabilityZone string
}

// ExpectVolumesInAZ fails the spec unless every volume is in the
// availability zone, naming each one that is not.
func ExpectVolumesInAZ(ctx context.Context, input ExpectVolumesInAZInput) {
	gomega.Expect(input.Clients).NotTo(gomega.BeNil(), "Invalid argument. input.Clients can't be nil when calling ExpectVolumesInAZ")
	gomega.Expect(input.VolumeIDs).NotTo(gomega.BeEmpty(), "Invalid argument. input.VolumeIDs can't be empty when calling ExpectVolumesInAZ")
	gomega.Expect(input.AvailabilityZone).NotTo(gomega.BeEmpty(), "Invalid argument. input.AvailabilityZone can't be empty when calling ExpectVolumesInAZ")
	var wrong []string
	for _, id := range input.VolumeIDs {
		v, err := volumes.Get(ctx, input.Clients.BlockStorage, id).Extract()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't get volume %s", id)
		if v.AvailabilityZone != input.AvailabilityZone {
			wrong = append(wrong, fmt.Sprintf("volume %q (%s) is in %q", v.Name, v.ID, v.AvailabilityZone))
		}
	}
	gomega.Expect(wrong).To(gomega.BeEmpty(), "Volumes outside availability zone %q: %s", input.AvailabilityZone, strings.Join(wrong, "; "))
}
