// Package cloudinit renders the cloud-init user-data that turns two fresh
// Ubuntu or CentOS machines into the DevStack controller and worker of a
// devstack.Config, the way Cluster API Provider OpenStack's CI builds them
// (hack/ci/cloud-init): a login user with its SSH key, an SSH host key
// generated here so the tunnel can pin it, packages, sysctls, a DevStack
// checkout with a typed local.conf (LocalConf: services, ML2/OVN, Octavia,
// Cinder, MTU, DNS, post-config sections, release branch), stack.sh, the
// controller's post-stack set-up (aggregates, flavors, quotas, volume type,
// NAT for the floating range) and the worker's bounded registration in the
// second availability zone. The templates live in data/cloud-init.
//
// The rendered documents hold the host key and DevStack's passwords; Secret
// and HostKey print redacted, LocalConf.String and RenderRedacted give forms
// safe for logs and artifacts.
//
//	cfg := devstack.DefaultConfig()
//	hostKey, err := cloudinit.NewHostKey()
//	if err != nil { ... }
//	pw, err := cloudinit.NewPasswords()
//	if err != nil { ... }
//	userData, err := cloudinit.Render(cloudinit.Input{
//		Config:        cfg,
//		Role:          cloudinit.Controller,
//		User:          "cloud",
//		AuthorizedKey: string(publicKey), // "ssh-ed25519 AAAA..."
//		HostKey:       hostKey,
//		Passwords:     pw,
//	})
//	// boot the controller with userData; pin hostKey.AuthorizedKey() in the tunnel.
package cloudinit
