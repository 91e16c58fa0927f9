package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

// DeferLeakCheckInput is the input of DeferLeakCheck.
type DeferLeakCheckInput struct {
	// DevStack is the environment to check. Required.
	DevStack *DevStack
	// NamePrefix limits the check to the resources that belong to it (see
	// FilterByPrefix: name or description starting with it, or part of such a
	// resource). Parallel processes share one environment, so each spec names
	// what it creates with a prefix of its own (see UniqueName) and checks
	// only that. Empty means every resource, which is right only for serial
	// runs.
	NamePrefix string
}

// DeferLeakCheck takes a snapshot of the environment's resources now and
// registers a DeferCleanup that, after the spec's own cleanups ran, fails the
// spec listing every resource created since and still present. Deletions
// still in flight are awaited within intervals, polling as they say (use
// e2eConfig.GetIntervals(spec, "wait-teardown")). Call it before the spec
// creates anything, so its check runs after their deletion.
func DeferLeakCheck(ctx context.Context, input DeferLeakCheckInput, intervals ...interface{}) {
	gomega.Expect(input.DevStack).NotTo(gomega.BeNil(), "Invalid argument. input.DevStack can't be nil when calling DeferLeakCheck")
	iv, err := ParseIntervals(intervals...)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid intervals for DeferLeakCheck")
	if iv.Polling == 0 {
		iv.Polling = DefaultLeakCheckPolling
	}
	before, err := input.DevStack.Environment.Snapshot(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't take a snapshot of DevStack %q's resources for the leak check", input.DevStack.Config().Name)
	ginkgo.DeferCleanup(func(ctx context.Context) {
		what := fmt.Sprintf("no resource left behind by this spec (name prefix %q)", input.NamePrefix)
		err := devstack.Poll(ctx, ginkgo.GinkgoLogr, what, iv, func(ctx context.Context) (string, bool, error) {
			ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
			defer cancel()
			leaked, err := LeakedSince(ctx, input.DevStack, before, input.NamePrefix)
			if err != nil {
				return "", false, err
			}
			out := make([]string, len(leaked))
			for i, r := range leaked {
				out[i] = r.String()
			}
			return fmt.Sprintf("%d left: %s", len(out), strings.Join(out, "; ")), len(out) == 0, nil
		})
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Resources left behind by this spec (name prefix %q)", input.NamePrefix)
	}, ginkgo.NodeTimeout(iv.Timeout+time.Minute))
}

// DefaultLeakCheckPolling is how often DeferLeakCheck looks again when its
// intervals give no polling.
const DefaultLeakCheckPolling = 2 * time.Second

// attemptTimeout bounds one look of a polling helper, so that an API that
// stopped answering is reported as an error and polled again.
const attemptTimeout = time.Minute

// LeakedSince lists the resources created since before (a Snapshot of the
// environment) that still exist and belong to prefix (see FilterByPrefix; all
// of them for an empty prefix).
func LeakedSince(ctx context.Context, d *DevStack, before *devstack.Snapshot, prefix string) ([]devstack.Resource, error) {
	now, err := d.Environment.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return FilterByPrefix(devstack.Diff(before, now), prefix), nil
}

// FilterByPrefix returns the resources of rs that belong to prefix (all of
// them for an empty prefix): those whose name or description starts with it,
// and those that are part of one of these (Resource.PartOf), such as the
// unnamed ports of a spec's server, router or network and the floating IPs
// on those ports.
//
// PartOf holds only what OpenStack still records: a floating IP whose port
// is gone, or a port detached from its server on a network the spec did not
// create, has nothing left that names the spec. Tag what has no name with
// the prefix as its description: a floating IP is named by its address
// (CreateFloatingIPInput.Description).
func FilterByPrefix(rs []devstack.Resource, prefix string) []devstack.Resource {
	if prefix == "" {
		return rs
	}
	owned := map[string]bool{}
	for _, r := range rs {
		if strings.HasPrefix(r.Name, prefix) || strings.HasPrefix(r.Description, prefix) {
			owned[r.ID] = true
		}
	}
	// A floating IP is on a port that is on a server: follow PartOf until
	// nothing more is found.
	for grew := true; grew; {
		grew = false
		for _, r := range rs {
			if owned[r.ID] {
				continue
			}
			for _, id := range r.PartOf() {
				if owned[id] {
					owned[r.ID], grew = true, true
					break
				}
			}
		}
	}
	var out []devstack.Resource
	for _, r := range rs {
		if owned[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// UniqueName returns a name for a spec's resources: prefix, the parallel
// process number and a time-based suffix, e.g. "sg-mz-p2-1a2b3c".
func UniqueName(prefix string) string {
	// Six digits always: no name is then the beginning of another's.
	return fmt.Sprintf("%s-p%d-%06x", prefix, ginkgo.GinkgoParallelProcess(), time.Now().UnixNano()&0xffffff)
}
