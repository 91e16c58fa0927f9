//go:build linux

package local_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
	"github.com/stackgate/stackgate/tunnel"
)

// What the guest prints on its console about where it read its metadata.
const (
	fromMetadataService = "stackgate-guest: no config drive; metadata from http://169.254.169.254/openstack/latest/"
	fromConfigDrive     = "stackgate-guest: metadata from the config drive"
)

// A server's VM as nova's libvirt driver runs it: what a spec needs to
// reach it and to find its QEMU process.
type vm struct {
	server       *servers.Server
	fip, private string
	instanceName string // libvirt's domain name
	host         string // the compute host: controller or worker
}

var _ = Describe("servers as real VMs", Ordered, Label("vm"), func() {
	var (
		compute, adminCompute, network *gophercloud.ServiceClient
		netID                          string
		signer                         ssh.Signer
		keyFile                        string
		hostKey                        ssh.PublicKey
		userData                       string
		cfg                            devstack.Config
		flavorID, imageID              string
	)

	BeforeAll(func(ctx SpecContext) {
		needEnv(ctx)
		if host.Virt() != local.VirtQEMU {
			Skip("servers run on nova's fake driver here (" + local.EnvVirt + "=" + host.Virt() + "): no VM runs behind them")
		}
		cfg = env.Config
		demo := cloudClient(ctx, env, tun, cfg.Cloud)
		compute = must(openstack.NewComputeV2(demo, eo()))
		compute.Microversion = "2.74"
		adminCompute = must(openstack.NewComputeV2(cloudClient(ctx, env, tun, cfg.CloudAdmin), eo()))
		adminCompute.Microversion = "2.74"
		network = must(openstack.NewNetworkV2(demo, eo()))
		img := must(openstack.NewImageV2(demo, eo()))
		for _, f := range must(flavors.ExtractFlavors(must(flavors.ListDetail(compute, nil).AllPages(ctx)))) {
			if f.Name == "m1.tiny" {
				flavorID = f.ID
			}
		}
		Expect(flavorID).NotTo(BeEmpty(), "flavor m1.tiny")
		imgs := must(images.ExtractImages(must(images.List(img, images.ListOpts{Name: "stackgate-tiny"}).AllPages(ctx))))
		Expect(imgs).To(HaveLen(1), "image stackgate-tiny")
		imageID = imgs[0].ID

		// The client's key pair, registered with nova, and a host key the
		// user-data hands the guest (cloud-init's ssh_keys).
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		signer = must(ssh.NewSignerFromKey(priv))
		block := must(ssh.MarshalPrivateKey(priv, ""))
		keyFile = filepath.Join(GinkgoT().TempDir(), "id_ed25519")
		Expect(os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)).To(Succeed())
		kp := must(keypairs.Create(ctx, compute, keypairs.CreateOpts{Name: name("vmkey"), PublicKey: string(ssh.MarshalAuthorizedKey(signer.PublicKey()))}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "key pair", func(ctx context.Context) error { return keypairs.Delete(ctx, compute, kp.Name, nil).ExtractErr() })
		})
		_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		hostKey = must(ssh.NewSignerFromKey(hostPriv)).PublicKey()
		hostPEM := pem.EncodeToMemory(must(ssh.MarshalPrivateKey(hostPriv, "")))
		userData = "#cloud-config\nssh_keys:\n  ed25519_private: |\n    " + strings.ReplaceAll(strings.TrimSpace(string(hostPEM)), "\n", "\n    ") + "\n"

		netID = routedNetwork(ctx, network, "vm", "10.96.0.0/24").network.ID
	}, NodeTimeout(25*time.Minute))

	// boot creates a server in zone on netID with the key pair and
	// user-data, waits for ACTIVE and, with a floating IP, gives it one.
	// With configDrive it asks for a config drive; without, the guest
	// reads the metadata service.
	//
	// A server with a floating IP gets a port created before it, as CAPO
	// creates its machines' ports; the others let nova create theirs.
	boot := func(ctx context.Context, what, zone, netID string, withFIP, configDrive bool) vm {
		GinkgoHelper()
		nets := []servers.Network{{UUID: netID}}
		if withFIP {
			p := must(ports.Create(ctx, network, ports.CreateOpts{Name: name(what), NetworkID: netID}).Extract())
			DeferCleanup(func(ctx SpecContext) {
				deleted(ctx, "port", func(ctx context.Context) error { return ports.Delete(ctx, network, p.ID).ExtractErr() })
			})
			nets = []servers.Network{{Port: p.ID}}
		}
		srv := must(servers.Create(ctx, compute, keypairs.CreateOptsExt{
			CreateOptsBuilder: servers.CreateOpts{
				Name: name(what), FlavorRef: flavorID, ImageRef: imageID,
				Networks: nets, AvailabilityZone: zone, UserData: []byte(userData),
				ConfigDrive: &configDrive,
			},
			KeyName: name("vmkey"),
		}, nil).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "server", func(ctx context.Context) error { return servers.Delete(ctx, compute, srv.ID).ExtractErr() })
			Eventually(ctx, func(ctx context.Context) error {
				_, err := servers.Get(ctx, compute, srv.ID).Extract()
				return err
			}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(MatchError(ContainSubstring("404")), "server %s deleted", srv.ID)
		})
		Eventually(ctx, serverStatus(compute, srv.ID)).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Equal("ACTIVE"), "server %s ACTIVE", srv.ID)
		var v vm
		adm := must(servers.Get(ctx, adminCompute, srv.ID).Extract())
		v.server, v.instanceName, v.host = adm, adm.InstanceName, adm.Host
		ps := must(ports.ExtractPorts(must(ports.List(network, ports.ListOpts{DeviceID: srv.ID}).AllPages(ctx))))
		Expect(ps).To(HaveLen(1), "the server's port")
		v.private = ps[0].FixedIPs[0].IPAddress
		if withFIP {
			pub := must(networks.ExtractNetworks(must(networks.List(network, networks.ListOpts{Name: "public"}).AllPages(ctx))))
			Expect(pub).To(HaveLen(1), "external network public")
			fip := must(floatingips.Create(ctx, network, floatingips.CreateOpts{FloatingNetworkID: pub[0].ID, PortID: ps[0].ID}).Extract())
			DeferCleanup(func(ctx SpecContext) {
				deleted(ctx, "floating IP", func(ctx context.Context) error { return floatingips.Delete(ctx, network, fip.ID).ExtractErr() })
			})
			v.fip = fip.FloatingIP
		}
		return v
	}

	// dial connects to the VM's sshd through the tunnel, pinning the host
	// key of the user-data, within timeout.
	dial := func(ctx context.Context, v vm, timeout time.Duration) *tunnel.Client {
		GinkgoHelper()
		cfg := &ssh.ClientConfig{User: "cirros", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: tunnel.PinnedHostKey(hostKey), HostKeyAlgorithms: tunnel.HostKeyAlgorithms(hostKey), Timeout: 30 * time.Second}
		var c *tunnel.Client
		Eventually(ctx, func(ctx context.Context) (err error) {
			c, err = tun.Jump(ctx, net.JoinHostPort(v.fip, "22"), cfg)
			return err
		}).WithTimeout(timeout).WithPolling(500*time.Millisecond).Should(Succeed(), "SSH to cirros@%s through the tunnel", v.fip)
		DeferCleanup(c.Close)
		return c
	}

	// domain returns the VM's state as the node's libvirtd reports it.
	domain := func(ctx context.Context, v vm) string {
		GinkgoHelper()
		uri := "qemu+unix:///system?socket=" + filepath.Join(env.StateDir, "libvirt", v.host, "run", "libvirt-sock")
		out, err := exec.CommandContext(ctx, "virsh", "-c", uri, "domstate", v.instanceName).CombinedOutput()
		if err != nil {
			return "absent: " + strings.TrimSpace(string(out))
		}
		return strings.TrimSpace(string(out))
	}

	// readMetadata waits until the server's console log shows that its
	// guest read its metadata from source (fromMetadataService or
	// fromConfigDrive): the hostname, the server's id and the key pair's
	// key, and no error reading it.
	readMetadata := func(ctx context.Context, v vm, source string) {
		GinkgoHelper()
		var console string
		Eventually(ctx, func(ctx context.Context) (string, error) {
			var err error
			console, err = servers.ShowConsoleOutput(ctx, compute, v.server.ID, servers.ShowConsoleOutputOpts{}).Extract()
			return console, err
		}).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(And(
			ContainSubstring(source),
			ContainSubstring("stackgate-guest: hostname "+v.server.Name+", server "+v.server.ID),
			ContainSubstring("stackgate-guest: authorized keys: 1"),
		), "console log of %s: metadata read (%s)", v.server.Name, source)
		Expect(console).NotTo(ContainSubstring("stackgate-guest: metadata:"), "console log of %s: an error reading its metadata", v.server.Name)
	}

	// askMetadataService asks the metadata service from inside the guest
	// (busybox's wget) and checks that it describes this server: its id,
	// the key pair's key and the user-data.
	askMetadataService := func(ctx context.Context, c *tunnel.Client, v vm) {
		GinkgoHelper()
		res, err := c.Run(ctx, "wget -qO- http://169.254.169.254/openstack/latest/meta_data.json")
		Expect(err).NotTo(HaveOccurred(), "GET meta_data.json from %s: %s", v.server.Name, res.Stderr)
		var md struct {
			UUID       string            `json:"uuid"`
			PublicKeys map[string]string `json:"public_keys"`
		}
		Expect(json.Unmarshal(res.Stdout, &md)).To(Succeed(), "meta_data.json: %s", res.Stdout)
		Expect(md.UUID).To(Equal(v.server.ID))
		Expect(md.PublicKeys).To(HaveKeyWithValue(name("vmkey"), ContainSubstring(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))))))
		res, err = c.Run(ctx, "wget -qO- http://169.254.169.254/openstack/latest/user_data")
		Expect(err).NotTo(HaveOccurred(), "GET user_data from %s: %s", v.server.Name, res.Stderr)
		Expect(string(res.Stdout)).To(Equal(userData))
	}

	// The first server lives for the whole container: the later specs use
	// it as a bastion and stop, start and reboot it.
	var (
		first   vm
		created time.Time
	)
	BeforeAll(func(ctx SpecContext) {
		created = time.Now()
		first = boot(ctx, "vm1", cfg.FailureDomain, netID, true, false)
	}, NodeTimeout(5*time.Minute))

	It("boots a server whose SSH answers through its floating IP with the key pair and the host key of its user-data", func(ctx SpecContext) {
		start := created
		Expect(first.host).To(Equal("controller"), "a server in %s runs on the controller", cfg.FailureDomain)
		Expect(domain(ctx, first)).To(Equal("running"))
		c := dial(ctx, first, 2*time.Minute)
		By(fmt.Sprintf("SSH answered %s after create", time.Since(start).Round(time.Second)))
		res, err := c.Run(ctx, "hostname; cat /proc/sys/kernel/random/boot_id")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(res.Stdout)).To(HavePrefix(name("vm1") + "\n"))

		By("it has no config drive: the guest read the metadata service, through the router")
		readMetadata(ctx, first, fromMetadataService)
		askMetadataService(ctx, c, first)
		res, err = c.Run(ctx, "cat /proc/mounts")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(res.Stdout)).NotTo(ContainSubstring("/run/config-drive"))

		By("the same server through the tunnel's SOCKS5 port, with OpenSSH")
		l := must(net.Listen("tcp", "127.0.0.1:0"))
		go func() { _ = tun.Serve(l) }()
		DeferCleanup(l.Close)
		known := filepath.Join(GinkgoT().TempDir(), "known_hosts")
		Expect(os.WriteFile(known, []byte(first.fip+" "+string(ssh.MarshalAuthorizedKey(hostKey))), 0o600)).To(Succeed())
		out, err := exec.CommandContext(ctx, "ssh", "-F", "none", "-i", keyFile, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+known, "-o", "ConnectTimeout=30",
			"-o", "ProxyCommand=nc -X 5 -x "+l.Addr().String()+" %h %p", "cirros@"+first.fip, "echo via-socks; id -u").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("via-socks\n0\n"))

		By("its console log shows the boot and the host key")
		Eventually(ctx, func(ctx context.Context) (string, error) {
			return servers.ShowConsoleOutput(ctx, compute, first.server.ID, servers.ShowConsoleOutputOpts{}).Extract()
		}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(And(
			ContainSubstring("Linux version"), ContainSubstring("stackgate-guest: ssh listening"),
			ContainSubstring(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey)))),
		))
	}, SpecTimeout(10*time.Minute))

	It("runs a server of the other zone under the worker's libvirtd, reached through the first as a bastion", func(ctx SpecContext) {
		second := boot(ctx, "vm2", cfg.FailureDomainAlt, netID, false, false)
		Expect(second.host).To(Equal("worker"), "a server in %s runs on the worker", cfg.FailureDomainAlt)
		Expect(domain(ctx, second)).To(Equal("running"))
		b := dial(ctx, first, 2*time.Minute)
		nodeCfg := &ssh.ClientConfig{User: "cirros", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: tunnel.PinnedHostKey(hostKey), HostKeyAlgorithms: tunnel.HostKeyAlgorithms(hostKey)}
		var res tunnel.RunResult
		Eventually(ctx, func(ctx context.Context) error {
			n, err := b.Jump(ctx, net.JoinHostPort(second.private, "22"), nodeCfg)
			if err != nil {
				return err
			}
			defer n.Close()
			res, err = n.Run(ctx, "hostname")
			return err
		}).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(Succeed(), "SSH to %s through %s", second.private, first.fip)
		Expect(string(res.Stdout)).To(Equal(name("vm2") + "\n"))

		By("its guest read the metadata service too, over VXLAN to the controller's router")
		readMetadata(ctx, second, fromMetadataService)
		n, err := b.Jump(ctx, net.JoinHostPort(second.private, "22"), nodeCfg)
		Expect(err).NotTo(HaveOccurred())
		defer n.Close()
		askMetadataService(ctx, n, second)
	}, SpecTimeout(10*time.Minute))

	It("gives a server the config drive it asks for, which the guest reads first", func(ctx SpecContext) {
		v := boot(ctx, "vm4", cfg.FailureDomain, netID, false, true)
		readMetadata(ctx, v, fromConfigDrive)
		b := dial(ctx, first, 2*time.Minute)
		nodeCfg := &ssh.ClientConfig{User: "cirros", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: tunnel.PinnedHostKey(hostKey), HostKeyAlgorithms: tunnel.HostKeyAlgorithms(hostKey)}
		var res tunnel.RunResult
		Eventually(ctx, func(ctx context.Context) error {
			n, err := b.Jump(ctx, net.JoinHostPort(v.private, "22"), nodeCfg)
			if err != nil {
				return err
			}
			defer n.Close()
			res, err = n.Run(ctx, "hostname; cat /proc/mounts")
			return err
		}).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(Succeed(), "SSH to %s through %s", v.private, first.fip)
		Expect(string(res.Stdout)).To(And(HavePrefix(name("vm4")+"\n"), ContainSubstring("/run/config-drive iso9660 ro")))
	}, SpecTimeout(10*time.Minute))

	It("serves the metadata service on a network without a router, from its DHCP namespace", func(ctx SpecContext) {
		isolated := must(networks.Create(ctx, network, networks.CreateOpts{Name: name("vmisolatednet")}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "network", func(ctx context.Context) error { return networks.Delete(ctx, network, isolated.ID).ExtractErr() })
		})
		sub := must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: isolated.ID, Name: name("vmisolatedsubnet"), CIDR: "10.96.1.0/24", IPVersion: gophercloud.IPv4}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "subnet", func(ctx context.Context) error { return subnets.Delete(ctx, network, sub.ID).ExtractErr() })
		})
		v := boot(ctx, "vm5", cfg.FailureDomain, isolated.ID, false, false)
		readMetadata(ctx, v, fromMetadataService)
	}, SpecTimeout(10*time.Minute))

	It("stops, starts and reboots a server for real", func(ctx SpecContext) {
		bootID := func(ctx context.Context) string {
			GinkgoHelper()
			res, err := dial(ctx, first, 2*time.Minute).Run(ctx, "cat /proc/sys/kernel/random/boot_id")
			Expect(err).NotTo(HaveOccurred())
			return string(res.Stdout)
		}
		status := func(want string) {
			GinkgoHelper()
			Eventually(ctx, func(ctx context.Context) (string, error) {
				s, err := servers.Get(ctx, compute, first.server.ID).Extract()
				if err != nil {
					return "", err
				}
				return s.Status, nil
			}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Equal(want))
		}
		id := bootID(ctx)
		Expect(servers.Stop(ctx, compute, first.server.ID).ExtractErr()).To(Succeed())
		status("SHUTOFF")
		Expect(domain(ctx, first)).To(Equal("shut off"))
		Expect(servers.Start(ctx, compute, first.server.ID).ExtractErr()).To(Succeed())
		status("ACTIVE")
		id2 := bootID(ctx)
		Expect(id2).NotTo(Equal(id), "a new boot after start")
		Expect(servers.Reboot(ctx, compute, first.server.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()).To(Succeed())
		status("REBOOT")
		status("ACTIVE")
		Expect(bootID(ctx)).NotTo(Equal(id2), "a new boot after reboot")
	}, SpecTimeout(15*time.Minute))

	It("refuses a key pair that does not exist and a flavor no node holds, without hanging", func(ctx SpecContext) {
		_, err := servers.Create(ctx, compute, keypairs.CreateOptsExt{
			CreateOptsBuilder: servers.CreateOpts{Name: name("nokey"), FlavorRef: flavorID, ImageRef: imageID, Networks: []servers.Network{{UUID: netID}}},
			KeyName:           name("no-such-key"),
		}, nil).Extract()
		Expect(err).To(MatchError(ContainSubstring("Invalid key_name provided")))

		huge := must(flavors.Create(ctx, adminCompute, flavors.CreateOpts{Name: name("huge"), RAM: 8 << 20, VCPUs: 1, Disk: gophercloud.IntToPointer(1)}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "flavor", func(ctx context.Context) error { return flavors.Delete(ctx, adminCompute, huge.ID).ExtractErr() })
		})
		srv := must(servers.Create(ctx, adminCompute, servers.CreateOpts{Name: name("huge"), FlavorRef: huge.ID, ImageRef: imageID, Networks: []servers.Network{{UUID: netID}}}, nil).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "server", func(ctx context.Context) error { return servers.Delete(ctx, adminCompute, srv.ID).ExtractErr() })
		})
		Eventually(ctx, func(ctx context.Context) (string, error) {
			s, err := servers.Get(ctx, adminCompute, srv.ID).Extract()
			if err != nil {
				return "", err
			}
			return s.Status + ": " + s.Fault.Message, nil
		}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(HavePrefix("ERROR: No valid host was found"), "an 8 TiB server (within the quota, beyond both nodes) is refused by the scheduler")
	}, SpecTimeout(4*time.Minute))

	It("refuses, in nova's scheduler, more servers at once than the machine's memory holds", func(ctx SpecContext) {
		// One request for one server more than both nodes take together:
		// the scheduler finds no host for all of them, so none boots.
		n := 2*host.VMsPerNode() + 1
		_, err := servers.Create(ctx, compute, servers.CreateOpts{Name: name("budget"), FlavorRef: flavorID, ImageRef: imageID, Networks: "none", Min: n, Max: n}, nil).Extract()
		Expect(err).NotTo(HaveOccurred(), "asking for %d servers", n)
		list := func(ctx context.Context) ([]servers.Server, error) {
			pages, err := servers.List(compute, servers.ListOpts{Name: "^" + name("budget")}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			return servers.ExtractServers(pages)
		}
		DeferCleanup(func(ctx SpecContext) {
			all := must(list(ctx))
			for _, s := range all {
				deleted(ctx, "server", func(ctx context.Context) error { return servers.Delete(ctx, compute, s.ID).ExtractErr() })
			}
			Eventually(ctx, list).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(BeEmpty(), "the %d refused servers deleted", len(all))
		})
		Eventually(ctx, func(ctx context.Context) ([]string, error) {
			all, err := list(ctx)
			if err != nil {
				return nil, err
			}
			var states []string
			for _, s := range all {
				states = append(states, s.Status)
			}
			return states, nil
		}).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(And(HaveLen(n), HaveEach("ERROR")), "%d servers, beyond the budget of %d per node", n, host.VMsPerNode())
		got := must(servers.Get(ctx, adminCompute, must(list(ctx))[0].ID).Extract())
		Expect(got.Fault.Message).To(HavePrefix("No valid host was found"), "refused by the scheduler")
		Expect(got.Host).To(BeEmpty(), "placed on no node")
	}, SpecTimeout(8*time.Minute))

	It("deletes a server: its QEMU process and its tap are gone", func(ctx SpecContext) {
		v := boot(ctx, "vm3", cfg.FailureDomain, netID, false, false)
		ps := must(ports.ExtractPorts(must(ports.List(network, ports.ListOpts{DeviceID: v.server.ID}).AllPages(ctx))))
		tap := ("tap" + ps[0].ID)[:14]
		nsOf := map[string]string{"controller": "controller", "worker": "worker"}[v.host]
		if i := host.Instance(); i != local.DefaultInstance {
			nsOf = i + "-" + nsOf
		}
		Expect(exec.CommandContext(ctx, "ip", "netns", "exec", nsOf, "ip", "link", "show", tap).Run()).To(Succeed(), "tap %s in %s", tap, nsOf)
		Expect(servers.Delete(ctx, compute, v.server.ID).ExtractErr()).To(Succeed())
		Eventually(ctx, func(ctx context.Context) string { return domain(ctx, v) }).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(HavePrefix("absent"))
		Eventually(ctx, func(ctx context.Context) error {
			return exec.CommandContext(ctx, "ip", "netns", "exec", nsOf, "ip", "link", "show", tap).Run()
		}).WithTimeout(time.Minute).WithPolling(time.Second).Should(HaveOccurred(), "tap %s gone", tap)
		out, _ := exec.CommandContext(ctx, "pgrep", "-f", "guest="+v.instanceName).Output()
		Expect(strings.TrimSpace(string(out))).To(BeEmpty(), "no QEMU process of %s", v.instanceName)
	}, SpecTimeout(10*time.Minute))
})
