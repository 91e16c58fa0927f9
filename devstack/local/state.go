//go:build linux

package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/stackgate/stackgate/devstack"
)

// stateVersion is the layout of a state directory this code reads and
// writes: the files named below and what they hold. bootstrapped.json
// records the version a state was bootstrapped with (a record without one
// is version 1, the layout before versions were recorded); Up rebuilds a
// state of another version from scratch, as it does one built for another
// configuration. Raise it with any change a running state must not meet.
//
//  1. the layout before versions were recorded;
//  2. tenant networks are VXLAN across both nodes, the seed gives the demo
//     user DevStack's roles and octavia its amphora image, flavor and
//     management network (a version 1 state has local networks and none
//     of these);
//  3. servers are real VMs (nova's libvirt driver, one libvirtd per node)
//     unless the record's virt says "fake"; the seed uploads the guest
//     image's kernel and ramdisk with stackgate-tiny;
//  4. volumes are RBD images of a Ceph cluster under ceph/ (a version 3
//     state's cinder ran its fake driver);
//  5. with real VMs, nova's scheduler takes no more servers per node
//     than the VM budget (NumInstancesFilter, VMsPerNode).
const stateVersion = 5

// The files and directories of a state directory that the code reads by
// name. Services' own data (databases, keys, configs) lives below it in
// directories of their own.
const (
	// fileEnvironment is the running environment (devstack.Environment.Marshal),
	// present while it is up; framework.EnvEnvironmentFile may name it.
	fileEnvironment = "environment.json"
	// fileBootstrapped records the configuration and state version the
	// databases were seeded with (bootstrapRecord).
	fileBootstrapped = "bootstrapped.json"
	// fileBootstrapMark is written last by a bootstrap that finished (a
	// timestamp): without it the state is bootstrapped afresh.
	fileBootstrapMark = "bootstrapped"
	// fileCloudsYAML is the environment's clouds.yaml, for people and tools.
	fileCloudsYAML = "clouds.yaml"
	// fileTimings holds the last duration of each stage (Timings).
	fileTimings = "timings.json"
	// fileAptInstall records the last apt install (LastInstall).
	fileAptInstall = "apt-install.json"
	// fileLock is the lock of the operations that change the state.
	fileLock = "lock"
	// fileNeutronNamespaces lists the namespaces neutron's agents made.
	fileNeutronNamespaces = "neutron-namespaces"
	// dirLogs holds every service's log.
	dirLogs = "logs"
)

// keptByWipe are what a teardown that wipes the data keeps: logs and
// measurements, the lock it holds, and the records of what is still to be
// cleaned up or was installed.
var keptByWipe = []string{dirLogs, fileTimings, fileLock, fileNeutronNamespaces, fileAptInstall}

// bootstrapRecord is fileBootstrapped: the configuration's fields at the
// top level, as before versions were recorded, and the state version.
type bootstrapRecord struct {
	devstack.Config
	StateVersion int `json:"stateVersion,omitempty"`
	// Virt is how servers ran (VirtQEMU, VirtFake); a state of another
	// virt is rebuilt.
	Virt string `json:"virt,omitempty"`
}

// readEnvironment reads the running environment's record; an error that
// isNotRecorded reports means none is recorded.
func (h *Host) readEnvironment() (*devstack.Environment, error) {
	b, err := os.ReadFile(h.path(fileEnvironment))
	if err != nil {
		return nil, err
	}
	env, err := devstack.UnmarshalEnvironment(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.path(fileEnvironment), err)
	}
	return env, nil
}

// isNotRecorded reports whether err is that of reading a record that is
// not there (or cannot be read at all), rather than one that is damaged.
func isNotRecorded(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}

// writeEnvironment records env as the running environment (mode 0600: it
// holds credentials).
func (h *Host) writeEnvironment(env *devstack.Environment) error {
	b, err := env.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(h.path(fileEnvironment), b, 0o600); err != nil {
		return fmt.Errorf("writing environment: %w", err)
	}
	return nil
}

// hasEnvironment reports whether an environment is recorded as running.
func (h *Host) hasEnvironment() bool {
	_, err := os.Stat(h.path(fileEnvironment))
	return err == nil
}

// forgetEnvironment removes the running environment's record.
func (h *Host) forgetEnvironment() { _ = os.Remove(h.path(fileEnvironment)) }

// bootstrapped reports whether a bootstrap of the state finished.
func (h *Host) bootstrapped() bool {
	_, err := os.Stat(h.path(fileBootstrapMark))
	return err == nil
}

// recordBootstrap records that the state was bootstrapped with cfg, in
// this code's state version.
func (h *Host) recordBootstrap(cfg devstack.Config) error {
	b, err := json.Marshal(bootstrapRecord{Config: cfg, StateVersion: stateVersion, Virt: h.virt})
	if err != nil {
		return err
	}
	if err := os.WriteFile(h.path(fileBootstrapped), b, 0o600); err != nil {
		return err
	}
	return os.WriteFile(h.path(fileBootstrapMark), []byte(time.Now().Format(time.RFC3339)), 0o600)
}

// readBootstrap reads what the state was bootstrapped with; a record
// without a version is version 1.
func (h *Host) readBootstrap() (bootstrapRecord, error) {
	var rec bootstrapRecord
	b, err := os.ReadFile(h.path(fileBootstrapped))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", h.path(fileBootstrapped), err)
	}
	if rec.StateVersion == 0 {
		rec.StateVersion = 1
	}
	return rec, nil
}
