package data

import "embed"

// CloudInit holds the text/template sources of the cloud-init user-data that
// turns two booted VMs into a DevStack controller and worker (for a host that
// boots them, as CAPO's OpenStack and GCE jobs do), under
// the directory "cloud-init": one document per role (controller.yaml.tmpl,
// worker.yaml.tmpl), the parts they share (common.yaml.tmpl) and the shell
// scripts they install (*.sh.tmpl). devstack/cloudinit renders them.
//
//go:embed cloud-init
var CloudInit embed.FS
