package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Memory returns the sum of the resident set sizes (bytes) of every process
// in the instance's namespaces (controller, worker and the neutron ones),
// and how many processes that is.
func (h *Host) Memory(ctx context.Context) (uint64, int, error) {
	n := h.names()
	var total uint64
	count := 0
	seen := map[string]bool{}
	for _, ns := range append([]string{n.controller, n.worker}, h.neutronNamespaces(ctx)...) {
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
		if err != nil {
			return 0, 0, fmt.Errorf("listing processes of namespace %s: %w", ns, err)
		}
		for _, pid := range strings.Fields(string(out)) {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			b, err := os.ReadFile("/proc/" + pid + "/status")
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
					kb, _ := strconv.ParseUint(f[1], 10, 64)
					total += kb * 1024
					count++
				}
			}
		}
	}
	return total, count, nil
}
