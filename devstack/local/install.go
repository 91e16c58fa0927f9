//go:build linux

package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strings"
	"time"
)

// Packages are the Debian packages the local host installs. The nova-compute
// and cinder-volume packages are left out on purpose: they pull in libvirt,
// QEMU and LVM; their code ships in python3-nova and python3-cinder.
var Packages = []string{
	"mariadb-server", "rabbitmq-server", "keystone", "placement-api",
	"nova-api", "nova-conductor", "nova-scheduler",
	"neutron-server", "neutron-linuxbridge-agent", "neutron-dhcp-agent", "neutron-l3-agent",
	"neutron-metadata-agent", "haproxy",
	"glance-api", "cinder-api", "cinder-scheduler",
	"octavia-api", "octavia-worker", "python3-octaviaclient",
	"python3-openstackclient", "python3-pymysql", "python3-openstacksdk",
	"openssh-server", "iproute2", "sudo", "uwsgi-plugin-python3",
}

// packages are the Debian packages this host needs: Packages, the volume
// backend's, and those of real VMs unless servers are the fake driver's.
func (h *Host) packages() []string {
	pkgs := append(slices.Clone(Packages), cephPackages...)
	if h.virt == VirtFake {
		return pkgs
	}
	return append(pkgs, virtPackages...)
}

// preflight checks what Up needs from the machine.
func preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("local host: must run as root (network namespaces, services on privileged ports); run with sudo")
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return errors.New("local host: needs Debian 12 (bookworm): /etc/debian_version not found")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return errors.New("local host: the kernel lacks network namespaces (CONFIG_NET_NS)")
	}
	for _, tool := range []string{"ip", "apt-get", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("local host: %s not found on PATH; install iproute2/apt", tool)
		}
	}
	return nil
}

// missingPackages lists the packages of Packages that are not installed
// (one dpkg-query for all of them; it exits non-zero when one is unknown,
// which only means that one is missing).
func missingPackages(ctx context.Context, packages []string) []string {
	args := append([]string{"-W", "-f=${Package} ${Status}\\n"}, packages...)
	out, _ := exec.CommandContext(ctx, "dpkg-query", args...).Output()
	installed := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if name, status, ok := strings.Cut(l, " "); ok && strings.Contains(status, "install ok installed") {
			installed[name] = true
		}
	}
	var missing []string
	for _, p := range packages {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

// install installs the missing packages without starting any service, and
// the account libvirtd needs.
func (h *Host) install(ctx context.Context) (err error) {
	if err := h.installPackages(ctx); err != nil {
		return err
	}
	if h.virt == VirtFake {
		return nil
	}
	return h.addQEMUUser(ctx)
}

// addQEMUUser adds the account Debian's libvirt resolves when its QEMU
// driver starts (even though qemu.conf runs QEMU as root), as
// libvirt-daemon-system's postinst does; that package is not installed (it
// brings libvirt's system services and their postinst starts).
func (h *Host) addQEMUUser(ctx context.Context) error {
	if _, err := user.Lookup(qemuUser); err == nil {
		return nil
	}
	for _, g := range []string{"kvm", qemuUser} {
		if _, err := user.LookupGroup(g); err == nil {
			continue
		}
		if _, err := h.run(ctx, "groupadd", "", nil, "", "groupadd", "--system", g); err != nil {
			return fmt.Errorf("adding group %s for libvirt: %w", g, err)
		}
	}
	if _, err := h.run(ctx, "useradd", "", nil, "", "useradd", "--system", "--gid", "kvm", "--groups", qemuUser,
		"--home-dir", "/var/lib/libvirt", "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "Libvirt Qemu", qemuUser); err != nil {
		return fmt.Errorf("adding user %s for libvirt: %w", qemuUser, err)
	}
	return nil
}

// qemuUser is the user and group Debian's libvirt is built to run QEMU as.
const qemuUser = "libvirt-qemu"

// installPackages installs the missing packages without starting any
// service.
func (h *Host) installPackages(ctx context.Context) (err error) {
	missing := missingPackages(ctx, h.packages())
	if len(missing) == 0 {
		return nil
	}
	h.log.Info("installing packages", "packages", missing)
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	// Without systemd nothing may start services from a postinst.
	if _, err := os.Stat("/usr/sbin/policy-rc.d"); os.IsNotExist(err) {
		if err := os.WriteFile("/usr/sbin/policy-rc.d", []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("writing /usr/sbin/policy-rc.d: %w", err)
		}
		defer os.Remove("/usr/sbin/policy-rc.d")
	}
	start := time.Now()
	defer func() {
		if err == nil {
			h.recordInstall(time.Since(start), missing)
		}
	}()
	// Another apt (a second instance coming up, unattended upgrades) holds
	// dpkg's lock for a while: wait for it, bounded.
	args := append([]string{"apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends"}, missing...)
	if _, err := h.run(ctx, "apt-install", "", env, "", args...); err != nil {
		if ctx.Err() != nil {
			return err
		}
		// Stale package lists are the usual cause; refresh once and retry.
		if _, uerr := h.run(ctx, "apt-update", "", env, "", "apt-get", "update"); uerr != nil {
			return fmt.Errorf("apt: %w", errors.Join(err, uerr))
		}
		if _, err := h.run(ctx, "apt-install", "", env, "", args...); err != nil {
			return fmt.Errorf("apt: %w", err)
		}
	}
	return nil
}

// AptInstall is an apt installation Up made.
type AptInstall struct {
	// At is when it finished.
	At time.Time
	// Duration is how long apt-get install took.
	Duration time.Duration
	// Packages are the packages it installed (the ones that were missing).
	Packages []string
}

func (h *Host) recordInstall(d time.Duration, pkgs []string) {
	b, _ := json.Marshal(AptInstall{At: time.Now(), Duration: d, Packages: pkgs})
	_ = os.WriteFile(h.path(fileAptInstall), b, 0o600)
}

// LastInstall returns the last apt installation Up made for this instance,
// if the state directory recorded one (Down keeps it).
func (h *Host) LastInstall() (AptInstall, bool) {
	var a AptInstall
	b, err := os.ReadFile(h.path(fileAptInstall))
	if err != nil || json.Unmarshal(b, &a) != nil || a.Duration <= 0 {
		return AptInstall{}, false
	}
	return a, true
}
