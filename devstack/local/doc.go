//go:build linux

// Package local is stackgate's default host: a real two-node OpenStack (Zed,
// from Debian's packages) in the network namespaces "controller" and
// "worker" of this machine, as Cluster API Provider OpenStack's CI builds it
// on two virtual machines.
//
// The controller runs every API on its private address and OpenSSH sshd on a
// public address reachable from the root namespace; the worker joins after
// the controller is ready (availability zone testaz2) without blocking Up.
// A state directory holds configuration, logs, pid files and a lock; a
// healthy running environment is reused by later calls to Up until Down.
//
//	host, err := local.New(local.WithOutput(os.Stderr)) // an invalid option fails here
//	if err != nil { ... }
//	env, err := host.Up(ctx, devstack.DefaultConfig())
//	if err != nil { ... }
//	// reach env.Controller through tunnel.Open with env.SSH
//	err = host.Down(ctx)
//
// Up needs root on Debian 12; it installs the packages it needs with apt.
package local
