//go:build linux

// Command guestinit is /init of the local host's guest image: the whole
// userspace of a server's VM besides busybox. As PID 1 it mounts the kernel's
// filesystems, loads the image's kernel modules, reaps orphans and runs the
// guest in a child process (the same binary, argument "guest"), which
//
//   - configures the first network interface by DHCP (busybox udhcpc),
//   - reads the server's metadata from nova's config drive or, without one,
//     from the metadata service (openstack/latest/meta_data.json and
//     user_data), as cloud-init does,
//   - sets the hostname, takes the SSH public keys of the keypair and of the
//     user-data (ssh_authorized_keys, users[].ssh_authorized_keys) and the
//     host keys of its ssh_keys (or generates one), prints the host keys to
//     the console between cloud-init's markers, runs its runcmd,
//   - and serves SSH on port 22 (exec, shell, direct-tcpip) for the users
//     root, cirros, ubuntu, debian and those the user-data names.
//
// Everything it does is printed to the console (nova's console log).
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "guest" {
		if err := runGuest(); err != nil {
			logf("guest: %v", err)
			os.Exit(1)
		}
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guestinit: runs as PID 1 of a guest (or with argument guest)")
		os.Exit(2)
	}
	pid1()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "stackgate-guest: "+format+"\n", args...)
}

// pid1 prepares the system, starts the guest process and reaps every child
// until the guest process ends; then it powers the VM off.
func pid1() {
	mountAll()
	if err := loadModules("/lib/modules/load-order"); err != nil {
		logf("modules: %v", err)
	}
	go powerButton()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGPWR)
	guest := exec.Command("/init", "guest")
	guest.Stdin, guest.Stdout, guest.Stderr = os.Stdin, os.Stdout, os.Stderr
	guest.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"}
	if err := guest.Start(); err != nil {
		logf("start guest: %v", err)
		poweroff()
	}
	for s := range sigs {
		switch s {
		case syscall.SIGCHLD:
			for {
				var ws unix.WaitStatus
				pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if err != nil || pid <= 0 {
					break
				}
				if pid == guest.Process.Pid {
					logf("guest process ended (%v); powering off", ws.ExitStatus())
					poweroff()
				}
			}
		default:
			logf("signal %v: powering off", s)
			poweroff()
		}
	}
}

func poweroff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func mountAll() {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"devpts", "/dev/pts", "devpts"}, {"tmpfs", "/run", "tmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			logf("mount %s: %v", m.dst, err)
		}
	}
}

// powerButton powers the VM off when ACPI's power button is pressed (what
// nova's stop and soft reboot do first): it reads the input devices' key
// events (evdev) for KEY_POWER.
func powerButton() {
	var devs []string
	for i := 0; i < 50 && len(devs) == 0; i++ {
		devs, _ = filepath.Glob("/dev/input/event*")
		if len(devs) == 0 {
			time.Sleep(100 * time.Millisecond) // devtmpfs adds the nodes as evdev binds
		}
	}
	if len(devs) == 0 {
		logf("no input device: the power button is not watched")
		return
	}
	for _, d := range devs {
		go func(d string) {
			f, err := os.Open(d)
			if err != nil {
				return
			}
			defer f.Close()
			var ev [24]byte // struct input_event on 64-bit: timeval, type, code, value
			for {
				if _, err := io.ReadFull(f, ev[:]); err != nil {
					return
				}
				typ, code := binary.LittleEndian.Uint16(ev[16:]), binary.LittleEndian.Uint16(ev[18:])
				value := int32(binary.LittleEndian.Uint32(ev[20:]))
				if typ == evKey && code == keyPower && value == 1 {
					logf("power button pressed: powering off")
					poweroff()
				}
			}
		}(d)
	}
}

// Input event codes (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)
