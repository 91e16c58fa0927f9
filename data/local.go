package data

import "embed"

// Local holds the templates of the local host (devstack/local): OpenStack
// configuration files, the sshd configuration and the Python scripts that
// register services and seed the cloud, all under the directory "local".
//
//go:embed local
var Local embed.FS
