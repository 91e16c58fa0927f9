package mgmtcluster

// Test access to the package's internals.
var (
	ParseComponents = parseComponents
	ManagerEnv      = managerEnv
	ManagerArgs     = managerArgs
)

// Components is components, for tests.
type Components = components

// Rewrite is components.rewrite.
func (c *components) Rewrite(provider, addr string, ca []byte) error {
	return c.rewrite(provider, addr, ca)
}

// ManagerPorts is managerPorts.
type ManagerPorts = managerPorts

// PIDs returns the managers' process IDs by provider name.
func (c *Cluster) PIDs() map[string]int {
	pids := map[string]int{}
	for _, m := range c.managers {
		pids[m.provider.Name] = m.cmd.Process.Pid
	}
	return pids
}

// TempDir is the cluster's temporary directory.
func (c *Cluster) TempDir() string { return c.tmp }
