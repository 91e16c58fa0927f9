package devstack

import "time"

// SetRemoteNodeForTest makes CollectLogs read a remote node's
// configuration below root, list its units with the command units and print
// one unit's log with journal (a format of the unit), in place of a DevStack
// node's systemd and journald. It returns a function that restores them.
func SetRemoteNodeForTest(root, units, journal string) (restore func()) {
	saved := devstackNode
	devstackNode = remoteNode{root: root, units: units, journal: journal}
	return func() { devstackNode = saved }
}

// PollingForTest returns the polling of s once Up's WithPolling(d) applied
// to it (s must be a Condition).
func PollingForTest(s Strategy, d time.Duration) time.Duration {
	return withPolling(s, d).(*Condition).intervals.Polling
}

// ResourceKindsForTest returns the Kind and the dump name of each row of
// the table Snapshot and the resource dumps share.
func ResourceKindsForTest() (kinds, dumps []string) {
	for _, k := range resourceKinds {
		kinds, dumps = append(kinds, k.kind), append(dumps, k.dump)
	}
	return kinds, dumps
}
