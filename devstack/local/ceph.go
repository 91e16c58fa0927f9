//go:build linux

package local

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// The volume backend: cinder's RBD driver on a Ceph cluster of one monitor,
// one manager and one OSD in the controller's namespace. QEMU opens the
// volumes itself through librbd (qemu-block-extra), so nothing needs the
// device-mapper, SCSI or iSCSI the kernel lacks.
const (
	// volumeBackend is cinder's backend name: the volume hosts are
	// controller@ceph and worker@ceph.
	volumeBackend = "ceph"
	// cephPool is the pool that holds every volume.
	cephPool = "volumes"
	// cephMon is the monitor's (and the manager's) id.
	cephMon = "controller"
	// cephOSDBytes is the size of the OSD's BlueStore file (sparse).
	cephOSDBytes = 64 << 30
)

// cephPackages are what the volume backend adds to Packages: Ceph's
// daemons, the rbd and ceph commands (cinder's RBD driver runs rbd), and
// the Python bindings cinder-volume imports.
var cephPackages = []string{"ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common", "python3-rados", "python3-rbd"}

// cephConf is the cluster's configuration, for its daemons and clients.
func (h *Host) cephConf() string { return h.etc("ceph.conf") }

// cephFSID returns the cluster's fsid, created with the state (file
// ceph/fsid); a wipe removes it with the cluster.
func (h *Host) cephFSID() (string, error) {
	p := h.path("ceph", "fsid")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) == 36 {
		return strings.TrimSpace(string(b)), nil
	}
	id, err := newUUID()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(h.path("ceph"), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return id, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// cephServices are the cluster's daemons, in the controller's namespace,
// each in the foreground with its log on its output.
func (h *Host) cephServices() []service {
	c := h.names().controller
	conf := h.cephConf()
	return []service{
		{name: "ceph-mon", ns: c, args: []string{"ceph-mon", "-c", conf, "-i", cephMon, "-f"}},
		{name: "ceph-mgr", ns: c, args: []string{"ceph-mgr", "-c", conf, "-i", cephMon, "-f"}},
		{name: "ceph-osd", ns: c, args: []string{"ceph-osd", "-c", conf, "-i", "0", "-f"}},
	}
}

// cephNames are the names of cephServices.
func (h *Host) cephNames() []string {
	var names []string
	for _, s := range h.cephServices() {
		names = append(names, s.name)
	}
	return names
}

// ceph runs the ceph command (or rbd, monmaptool, ...) against the
// cluster from inside the controller's namespace, bounded by its own
// connect timeout.
func (h *Host) ceph(ctx context.Context, step string, args ...string) (string, error) {
	if args[0] == "ceph" {
		args = append([]string{"ceph", "--connect-timeout", "20"}, args[1:]...)
	}
	args = append([]string{args[0], "-c", h.cephConf()}, args[1:]...)
	return h.run(ctx, step, h.names().controller, nil, "", args...)
}

// startCeph starts the cluster's daemons and waits until its OSD is up,
// its manager active and every placement group active. When fresh it first
// creates the monitor's store, the OSD (BlueStore on a sparse file) and
// the volumes pool.
func (h *Host) startCeph(ctx context.Context, fresh bool) error {
	svc := h.cephServices()
	mon, mgr, osd := svc[0], svc[1], svc[2]
	alive := func() error { return h.checkAlive(h.cephNames()...) }
	if fresh {
		for _, d := range []string{"mon", "osd", "mgr", "run", "crash"} {
			_ = os.RemoveAll(h.path("ceph", d))
		}
		for _, d := range []string{"run", "crash", "mon/ceph-" + cephMon, "mgr/ceph-" + cephMon, "osd/ceph-0"} {
			if err := os.MkdirAll(h.path("ceph", d), 0o700); err != nil {
				return err
			}
		}
		fsid, err := h.cephFSID()
		if err != nil {
			return err
		}
		monmap := h.path("ceph", "monmap")
		addr := fmt.Sprintf("[v2:%s:3300,v1:%[1]s:6789]", h.cfgControllerIP())
		if _, err := h.run(ctx, "ceph-monmap", "", nil, "", "monmaptool", "--create", "--clobber", "--addv", cephMon, addr, "--fsid", fsid, monmap); err != nil {
			return err
		}
		if _, err := h.run(ctx, "ceph-mon-mkfs", "", nil, "", "ceph-mon", "-c", h.cephConf(), "--mkfs", "-i", cephMon, "--monmap", monmap); err != nil {
			return err
		}
	}
	if err := h.start(mon); err != nil {
		return err
	}
	monAlive := func() error { return h.checkAlive(mon.name) }
	if err := poll(ctx, "ceph-mon in quorum", 60*time.Second, monAlive, func(ctx context.Context) (bool, string) {
		out, err := h.ceph(ctx, "ceph-quorum", "ceph", "quorum_status")
		if err != nil {
			return false, lastLines(err.Error(), 1)
		}
		return strings.Contains(out, `"quorum_leader_name":"`+cephMon+`"`), lastLines(out, 1)
	}); err != nil {
		return err
	}
	if err := h.start(mgr); err != nil {
		return err
	}
	if fresh {
		id, err := newUUID()
		if err != nil {
			return err
		}
		out, err := h.ceph(ctx, "ceph-osd-new", "ceph", "osd", "new", id)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "0" {
			return fmt.Errorf("ceph: the new cluster gave its OSD id %q, not 0", strings.TrimSpace(out))
		}
		if _, err := h.ceph(ctx, "ceph-osd-crush", "ceph", "osd", "crush", "add", "osd.0", "1.0", "host=controller", "root=default"); err != nil {
			return err
		}
		if _, err := h.ceph(ctx, "ceph-osd-mkfs", "ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", id); err != nil {
			return err
		}
	}
	if err := h.start(osd); err != nil {
		return err
	}
	if fresh {
		for i, args := range [][]string{
			{"ceph", "osd", "pool", "create", cephPool, "32"},
			{"ceph", "osd", "pool", "application", "enable", cephPool, "rbd"},
		} {
			if _, err := h.ceph(ctx, fmt.Sprintf("ceph-pool-%d", i+1), args...); err != nil {
				return err
			}
		}
	}
	return poll(ctx, "ceph: OSD up, manager active, placement groups active", 2*time.Minute, alive, func(ctx context.Context) (bool, string) {
		out, err := h.ceph(ctx, "ceph-status", "ceph", "status", "--format", "json")
		if err != nil {
			return false, lastLines(err.Error(), 1)
		}
		return cephReady(out)
	})
}

// cephReady reads `ceph status --format json`: whether the OSD is up and
// in, a manager active and every placement group active, and what is not.
func cephReady(statusJSON string) (bool, string) {
	var st struct {
		OSDMap struct {
			Up int `json:"num_up_osds"`
			In int `json:"num_in_osds"`
		} `json:"osdmap"`
		MgrMap struct {
			Available bool `json:"available"`
		} `json:"mgrmap"`
		PGMap struct {
			PGs     int `json:"num_pgs"`
			ByState []struct {
				Name  string `json:"state_name"`
				Count int    `json:"count"`
			} `json:"pgs_by_state"`
		} `json:"pgmap"`
	}
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil {
		return false, "ceph status: " + err.Error()
	}
	active := 0
	var states []string
	for _, s := range st.PGMap.ByState {
		states = append(states, fmt.Sprintf("%d %s", s.Count, s.Name))
		if strings.HasPrefix(s.Name, "active") {
			active += s.Count
		}
	}
	ok := st.OSDMap.Up >= 1 && st.OSDMap.In >= 1 && st.MgrMap.Available && st.PGMap.PGs > 0 && active == st.PGMap.PGs
	return ok, fmt.Sprintf("osds up %d in %d, mgr available %t, pgs %d (%s)", st.OSDMap.Up, st.OSDMap.In, st.MgrMap.Available, st.PGMap.PGs, strings.Join(states, ", "))
}
