//go:build linux

package guest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"
)

// Debian's packages the image is built from.
const (
	// KernelMetaPackage depends on the current cloud kernel's package.
	KernelMetaPackage = "linux-image-cloud-amd64"
	// BusyboxPackage is busybox, linked statically.
	BusyboxPackage = "busybox-static"
	// InitPackage is guestinit's import path.
	InitPackage = "github.com/stackgate/stackgate/devstack/local/internal/guest/guestinit"
)

// Options configure Build.
type Options struct {
	// Dir is the cache directory (required): downloaded packages, their
	// extracted trees and built images, one directory per content hash.
	Dir string
	// Go is the go command that builds guestinit (default "go").
	Go string
	// Log receives progress.
	Log logr.Logger
}

// Image is a built guest image.
type Image struct {
	// Kernel and Initramfs are the files to boot (glance's aki and ari).
	Kernel, Initramfs string
	// KernelRelease is the kernel's release (uname -r).
	KernelRelease string
	// ID names the image's content: the same packages and guestinit give
	// the same ID (and the same bytes).
	ID string
}

// Build builds the guest image, or returns the one built before from the
// same packages and guestinit. It downloads the packages with apt-get
// download (no dpkg lock is taken, nothing is installed) and extracts them
// with dpkg-deb.
func Build(ctx context.Context, o Options) (Image, error) {
	if o.Dir == "" {
		return Image{}, errors.New("guest image: Options.Dir is required: the cache directory")
	}
	if o.Go == "" {
		o.Go = "go"
	}
	debs := filepath.Join(o.Dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return Image{}, err
	}
	kernelPkg, err := kernelPackage(ctx)
	if err != nil {
		return Image{}, err
	}
	kernelDeb, err := download(ctx, debs, kernelPkg)
	if err != nil {
		return Image{}, err
	}
	busyboxDeb, err := download(ctx, debs, BusyboxPackage)
	if err != nil {
		return Image{}, err
	}
	tmp, err := os.MkdirTemp(o.Dir, ".build-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(tmp)
	initBin := filepath.Join(tmp, "init")
	build := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", initBin, InitPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("guest image: go build %s: %w\n%s", InitPackage, err, out)
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		return Image{}, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "guest image v1\n%s\n%s\n", filepath.Base(kernelDeb), filepath.Base(busyboxDeb))
	h.Write(initData)
	for _, m := range Modules {
		fmt.Fprintln(h, m)
	}
	id := hex.EncodeToString(h.Sum(nil))[:16]
	img := Image{ID: id, Kernel: filepath.Join(o.Dir, id, "vmlinuz"), Initramfs: filepath.Join(o.Dir, id, "initrd.gz")}
	if rel, err := os.ReadFile(filepath.Join(o.Dir, id, "release")); err == nil {
		img.KernelRelease = string(rel)
		return img, nil
	}
	o.Log.Info("building the guest image", "kernel", filepath.Base(kernelDeb), "busybox", filepath.Base(busyboxDeb))
	root := filepath.Join(tmp, "root")
	for _, deb := range []string{kernelDeb, busyboxDeb} {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			return Image{}, fmt.Errorf("guest image: dpkg-deb -x %s: %w\n%s", deb, err, out)
		}
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return Image{}, fmt.Errorf("guest image: %s holds %d kernels in /boot, want 1", filepath.Base(kernelDeb), len(kernels))
	}
	img.KernelRelease = strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	var a Archive
	if err := compose(ctx, &a, root, img.KernelRelease, initData); err != nil {
		return Image{}, err
	}
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Image{}, err
	}
	f, err := os.Create(filepath.Join(out, "initrd.gz"))
	if err != nil {
		return Image{}, err
	}
	if _, err := a.WriteTo(f); err != nil {
		f.Close()
		return Image{}, fmt.Errorf("guest image: writing the initramfs: %w", err)
	}
	if err := f.Close(); err != nil {
		return Image{}, err
	}
	if err := os.Rename(kernels[0], filepath.Join(out, "vmlinuz")); err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(out, "release"), []byte(img.KernelRelease), 0o644); err != nil {
		return Image{}, err
	}
	_ = os.RemoveAll(filepath.Join(o.Dir, id))
	if err := os.Rename(out, filepath.Join(o.Dir, id)); err != nil {
		return Image{}, err
	}
	return img, nil
}

// kernelPackage names the package KernelMetaPackage depends on.
func kernelPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", KernelMetaPackage).Output()
	if err != nil {
		return "", fmt.Errorf("guest image: apt-cache depends %s: %w (run apt-get update)", KernelMetaPackage, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: "); ok && strings.HasPrefix(p, "linux-image-") {
			return p, nil
		}
	}
	return "", fmt.Errorf("guest image: %s depends on no linux-image package", KernelMetaPackage)
}

// download fetches pkg's .deb into dir unless a file of that package is
// there, and returns its path.
func download(ctx context.Context, dir, pkg string) (string, error) {
	have, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(have) > 0 {
		return have[len(have)-1], nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("guest image: apt-get download %s: %w\n%s", pkg, err, out)
	}
	have, _ = filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(have) == 0 {
		return "", fmt.Errorf("guest image: apt-get download %s left no .deb in %s", pkg, dir)
	}
	return have[len(have)-1], nil
}

// compose adds the image's files to a: guestinit as /init, busybox and its
// applets, the kernel modules with their load order, and the few files
// busybox's tools read.
func compose(ctx context.Context, a *Archive, root, release string, initData []byte) error {
	a.Add(File{Name: "init", Mode: 0o755, Data: initData})
	a.Add(File{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1})
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "root", "etc", "var/log", "home"} {
		a.Add(File{Name: d, Mode: fs.ModeDir | 0o755})
	}
	bb, err := os.ReadFile(filepath.Join(root, "bin", "busybox"))
	if err != nil {
		return fmt.Errorf("guest image: busybox: %w", err)
	}
	a.Add(File{Name: "bin/busybox", Mode: 0o755, Data: bb})
	list, err := exec.CommandContext(ctx, filepath.Join(root, "bin", "busybox"), "--list-full").Output()
	if err != nil {
		return fmt.Errorf("guest image: busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "bin/busybox" || applet == "sbin/init" || applet == "bin/sudo" {
			continue
		}
		a.Add(File{Name: applet, Mode: fs.ModeSymlink | 0o777, Data: []byte("/bin/busybox")})
	}
	for name, data := range files {
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") || strings.HasSuffix(name, ".script") {
			mode = 0o755
		}
		a.Add(File{Name: name, Mode: mode, Data: []byte(data)})
	}
	modRoot := filepath.Join("lib", "modules", release)
	order, err := ModuleOrder(os.DirFS(filepath.Join(root, modRoot)), Modules)
	if err != nil {
		return fmt.Errorf("guest image: %w", err)
	}
	var lines strings.Builder
	for _, p := range order {
		data, err := os.ReadFile(filepath.Join(root, modRoot, p))
		if err != nil {
			return err
		}
		name := filepath.Join(modRoot, p)
		a.Add(File{Name: name, Mode: 0o644, Data: data})
		lines.WriteString("/" + name + "\n")
	}
	a.Add(File{Name: "lib/modules/load-order", Mode: 0o644, Data: []byte(lines.String())})
	return nil
}

// files are the image's small files.
var files = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ncirros:x:0:0:cirros:/root:/bin/sh\nubuntu:x:0:0:ubuntu:/root:/bin/sh\ndebian:x:0:0:debian:/root:/bin/sh\n",
	"etc/group":  "root:x:0:\n",
	"etc/hosts":  "127.0.0.1 localhost\n",
	// sudo runs its command as root, which everyone is here.
	"bin/sudo": "#!/bin/sh\nwhile [ $# -gt 0 ]; do case \"$1\" in -u|-g) shift 2;; --) shift; break;; -*) shift;; *) break;; esac; done\nexec \"$@\"\n",
	// udhcpc's script: the lease's address, MTU, routes (classless static
	// routes first, as neutron's metadata route) and DNS servers.
	"etc/udhcpc.script": `#!/bin/sh
action=$1
case "$action" in
deconfig)
	ip addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
	if [ -n "$staticroutes" ]; then
		set -- $staticroutes
		while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
	fi
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	: > /etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
	echo "stackgate-guest: dhcp $action: $ip/${mask:-24} router ${router:-none} mtu ${mtu:-default}"
	;;
esac
`,
}
