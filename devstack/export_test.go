package devstack

// SetRemoteNodeForTest makes CollectLogs read a remote node's
// configuration below root, list its units with the command units and print
// one unit's log with journal (a format of the unit), in place of a DevStack
// node's systemd and journald. It returns a function that restores them.
func SetRemoteNodeForTest(root, units, journal string) (restore func()) {
	saved := devstackNode
	devstackNode = remoteNode{root: root, units: units, journal: journal}
	return func() { devstackNode = saved }
}
