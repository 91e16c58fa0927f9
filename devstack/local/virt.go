//go:build linux

package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stackgate/stackgate/devstack/local/internal/guest"
)

// How servers run (WithVirt, STACKGATE_LOCAL_VIRT).
const (
	// VirtQEMU runs every server as a real VM: QEMU without KVM (TCG),
	// started by one libvirtd per node through nova's libvirt driver.
	VirtQEMU = "qemu"
	// VirtFake keeps servers as bookkeeping of nova's fake driver: nothing
	// runs behind them (no console, no SSH), for runs that need no
	// reachable servers.
	VirtFake = "fake"
)

// EnvVirt names the environment variable that chooses how servers run
// when WithVirt is not given: "qemu" (the default) or "fake".
const EnvVirt = "STACKGATE_LOCAL_VIRT"

// WithVirt chooses how servers run: VirtQEMU (the default) or VirtFake. It
// wins over STACKGATE_LOCAL_VIRT.
func WithVirt(v string) Option { return func(h *Host) { h.virt = v } }

// Virt returns how this host's servers run.
func (h *Host) Virt() string { return h.virt }

func validVirt(v string) error {
	if v == VirtQEMU || v == VirtFake {
		return nil
	}
	return fmt.Errorf("local host: virt %q (WithVirt or %s): use %q (real VMs) or %q (nova's fake driver)", v, EnvVirt, VirtQEMU, VirtFake)
}

// virtPackages are what real VMs add to Packages: libvirt's daemon with
// its QEMU driver and virsh, QEMU itself with its RBD block driver
// (qemu-block-extra: volumes), qemu-img, libvirt's Python binding for
// nova, genisoimage for nova's config drives and dosfstools for the
// ephemeral disks it formats (vfat, for an image without os_type).
var virtPackages = []string{
	"libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients", "qemu-system-x86", "qemu-block-extra", "qemu-utils",
	"python3-libvirt", "genisoimage", "dosfstools",
}

// libvirtDirs are the directories of a libvirtd that each node's libvirtd
// has of its own: bind mounts, in a mount namespace of its own, of
// libvirt/<node>/<name> under the state directory.
var libvirtDirs = []struct{ name, at string }{
	{"run", "/run/libvirt"}, {"lib", "/var/lib/libvirt"}, {"etc", "/etc/libvirt"},
	{"log", "/var/log/libvirt"}, {"cache", "/var/cache/libvirt"},
}

// libvirtDir is a node's libvirt directory under the state directory.
func (h *Host) libvirtDir(node string, parts ...string) string {
	return h.path(append([]string{"libvirt", node}, parts...)...)
}

// libvirtSocket is the node's libvirtd socket, as nova-compute reaches it
// from outside the daemon's mount namespace.
func (h *Host) libvirtSocket(node string) string { return h.libvirtDir(node, "run", "libvirt-sock") }

// libvirtService is a node's libvirtd: in the node's network namespace, a
// mount namespace of its own (its run, state and configuration
// directories) and a UTS namespace whose hostname is the node's name (what
// nova's libvirt driver reports as the hypervisor's name).
func (h *Host) libvirtService(node, ns string) service {
	var script strings.Builder
	// The node's name resolves (libvirt looks its hostname up) without
	// asking a DNS server the namespace cannot reach.
	fmt.Fprintf(&script, "set -e; hostname %s; mount --bind %s /etc/hosts; ", node, h.libvirtDir(node, "hosts"))
	for _, d := range libvirtDirs {
		fmt.Fprintf(&script, "mkdir -p %s; mount --bind %s %s; ", d.at, h.libvirtDir(node, d.name), d.at)
	}
	fmt.Fprintf(&script, "exec /usr/sbin/libvirtd --config /etc/libvirt/libvirtd.conf --pid-file %s", h.libvirtDir(node, "run", "libvirtd.pid"))
	return service{name: "libvirtd-" + node, ns: ns, args: []string{"unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", "-c", script.String()}}
}

// libvirtConfigs are a node's libvirtd.conf and qemu.conf: root runs QEMU
// without cgroups, namespaces, security drivers or virtlogd (QEMU writes
// the console log itself).
var libvirtConfigs = map[string]string{
	"libvirtd.conf": `unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
`,
	"qemu.conf": `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
`,
}

// writeLibvirtConfigs creates each node's libvirt directories and
// configuration.
func (h *Host) writeLibvirtConfigs() error {
	for _, node := range []string{"controller", "worker"} {
		for _, d := range libvirtDirs {
			if err := os.MkdirAll(h.libvirtDir(node, d.name), 0o700); err != nil {
				return err
			}
		}
		for name, content := range libvirtConfigs {
			if err := os.WriteFile(h.libvirtDir(node, "etc", name), []byte(content), 0o600); err != nil {
				return err
			}
		}
		hosts := fmt.Sprintf("127.0.0.1 localhost\n127.0.1.1 %s\n", node)
		if err := os.WriteFile(h.libvirtDir(node, "hosts"), []byte(hosts), 0o644); err != nil {
			return err
		}
		if err := os.MkdirAll(h.path("nova", "instances-"+node), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// guestCmdline is the guest image's kernel command line (glance's
// os_command_line): the serial console nova logs, and no zeroing or
// shuffling of pages, so a VM touches as little host memory as it can.
const guestCmdline = "console=ttyS0 no_timer_check init_on_alloc=0 page_alloc.shuffle=0"

// guestImage builds (or finds in the cache) the image the seed uploads.
func (h *Host) guestImage(ctx context.Context) (guest.Image, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "cache")
	}
	return guest.Build(ctx, guest.Options{Dir: filepath.Join(base, "stackgate", "guest"), Log: h.log})
}

// vmPID reads a pid file libvirt wrote for one of node's VMs and returns
// the pid if that process runs QEMU for this state directory's instances
// of node (a pid reused by another process does not count).
func (h *Host) vmPID(node, pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "qemu-system") || !strings.Contains(string(cmdline), h.path("nova", "instances-"+node)) {
		return 0, false
	}
	return pid, true
}

// stopVMs kills the QEMU processes libvirt started for this instance: the
// pids libvirt recorded in each node's run directory, each checked to be a
// QEMU process whose command line names this state directory's instances
// (a pid reused by another process is left alone).
func (h *Host) stopVMs() []int {
	var killed []int
	for _, node := range []string{"controller", "worker"} {
		pidFiles, _ := filepath.Glob(h.libvirtDir(node, "run", "qemu", "*.pid"))
		for _, f := range pidFiles {
			pid, ok := h.vmPID(node, f)
			if !ok {
				continue
			}
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
			_ = os.Remove(f)
		}
	}
	return killed
}

// stopVMsAndWait stops the VMs (stopVMs) and waits until their processes
// are gone (bounded: 15 s), so that their taps are gone with them.
func (h *Host) stopVMsAndWait(ctx context.Context) error {
	pids := h.stopVMs()
	if len(pids) == 0 {
		return nil
	}
	return poll(ctx, fmt.Sprintf("the VMs' QEMU processes %v to exit", pids), 15*time.Second, nil, func(context.Context) (bool, string) {
		var alive []string
		for _, pid := range pids {
			if _, err := startTime(pid); err == nil {
				alive = append(alive, strconv.Itoa(pid))
			}
		}
		return len(alive) == 0, "still running: " + strings.Join(alive, ", ")
	})
}

// vms lists each node's VMs with virsh (bounded: 10 s per node) and their
// QEMU processes' memory.
func (h *Host) vms(ctx context.Context) []VM {
	var out []VM
	for _, node := range []string{"controller", "worker"} {
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := exec.CommandContext(vctx, "virsh", "-c", "qemu+unix:///system?socket="+h.libvirtSocket(node), "list", "--all", "--name").Output()
		cancel()
		if err != nil {
			continue
		}
		for _, name := range strings.Fields(string(list)) {
			v := VM{Node: node, Name: name, State: "shut off"}
			if pid, ok := h.vmPID(node, h.libvirtDir(node, "run", "qemu", name+".pid")); ok {
				v.PID, v.State, v.RSS = pid, "running", rss(pid)
			}
			out = append(out, v)
		}
	}
	return out
}

// rss is a process's resident memory in bytes (0 when unreadable).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// ebtablesWrapper is the ebtables the linuxbridge agents run. Debian 12's
// ebtables is ebtables-nft 1.8.9 (the kernel has no legacy ebtables), which
// cannot delete a rule with an among match by its listing ("RULE_DELETE
// failed (Invalid argument)"). The agent deletes a port's MAC rule that way
// whenever it sets the port up again, retries, and resyncs every port in a
// loop, so that new ports stay DOWN. Where that delete fails, the wrapper
// flushes the port's MAC chain instead and puts back the chain's final DROP
// rule (as the agent made it): the agent inserts the port's rule next,
// which is what the delete was for.
const ebtablesWrapper = `#!/bin/sh
/usr/sbin/ebtables-nft "$@" && exit 0
rc=$?
chain=""
del=0
among=0
prev=""
for a in "$@"; do
	[ "$prev" = "-D" ] && chain=$a && del=1
	[ "$a" = "--among-src" ] && among=1
	prev=$a
done
case "$chain" in neutronMAC-*) ;; *) exit $rc ;; esac
[ $del = 1 ] && [ $among = 1 ] || exit $rc
/usr/sbin/ebtables-nft -t nat --concurrent -F "$chain" || exit $rc
exec /usr/sbin/ebtables-nft -t nat --concurrent -A "$chain" -j DROP
`

// withEbtablesFix runs argv (a linuxbridge agent) in a mount namespace
// whose /etc/alternatives is the copy writeEbtablesFix made, where ebtables
// is ebtablesWrapper. The machine's own ebtables is left as it is.
func (h *Host) withEbtablesFix(argv []string) []string {
	script := fmt.Sprintf(`set -e; mount --bind %s /etc/alternatives; exec "$@"`, h.path("ebtables", "alternatives"))
	return append([]string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh"}, argv...)
}

// writeEbtablesFix writes ebtablesWrapper and a copy of /etc/alternatives
// (its symlinks) whose ebtables points at it, for withEbtablesFix.
func (h *Host) writeEbtablesFix() error {
	// Updated in place, never removed: running agents have the
	// directory bind-mounted.
	dir := h.path("ebtables", "alternatives")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	wrapper := h.path("ebtables", "ebtables")
	if err := os.WriteFile(wrapper+".new", []byte(ebtablesWrapper), 0o755); err != nil {
		return err
	}
	if err := os.Rename(wrapper+".new", wrapper); err != nil {
		return err
	}
	entries, err := os.ReadDir("/etc/alternatives")
	if err != nil {
		return fmt.Errorf("ebtables for the linuxbridge agents: %w", err)
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/etc/alternatives", e.Name()))
		if err != nil {
			continue // not a symlink (README)
		}
		if e.Name() == "ebtables" {
			target = wrapper
		}
		link := filepath.Join(dir, e.Name())
		if have, err := os.Readlink(link); err == nil && have == target {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}

// The VM budget: how many servers a node holds, so that a request beyond
// what the machine's memory holds is refused by nova's scheduler
// (NumInstancesFilter) rather than ending in the kernel's OOM killer. RAM
// alone cannot say it: a TCG VM touches a fraction of its flavor's RAM, so
// the nodes advertise four times theirs.
const (
	// vmRSS is what one idle VM of the guest image occupies on the host
	// (guest pages it touched, TCG's code buffer, QEMU), rounded up.
	vmRSS = 320 << 20
	// servicesReserve is what the OpenStack services, Ceph and a
	// management cluster beside them take of the machine's memory.
	servicesReserve = 8 << 30
	// minVMsPerNode and maxVMsPerNode bound the budget: the suites need
	// ten servers at once; nova's own default cap is 50 per host.
	minVMsPerNode, maxVMsPerNode = 5, 50
)

// VMsPerNode returns how many servers each node's nova-compute takes on
// this machine (its total memory, less what the services take, over what
// an idle VM occupies, shared by the two nodes).
func (h *Host) VMsPerNode() int { return vmsPerNode(memTotal()) }

func vmsPerNode(total uint64) int {
	n := 0
	if total > servicesReserve {
		n = int((total - servicesReserve) / vmRSS / 2)
	}
	return min(max(n, minVMsPerNode), maxVMsPerNode)
}

// memTotal is the machine's memory (MemTotal of /proc/meminfo), in bytes;
// 0 when it cannot be read.
func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
