//go:build linux

package local_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/local"
)

var _ = Describe("volumes real VMs use", Ordered, Label("vm", "volume"), func() {
	var (
		compute, adminCompute, volume, adminVolume, network, image *gophercloud.ServiceClient
		netID, flavorID, imageID                                   string
	)
	cfg := devstack.DefaultConfig()

	BeforeAll(func(ctx SpecContext) {
		needEnv(ctx)
		if host.Virt() != local.VirtQEMU {
			Skip("servers run on nova's fake driver here (" + local.EnvVirt + "=" + host.Virt() + "): no VM opens a volume")
		}
		cfg = env.Config
		demo := cloudClient(ctx, env, tun, cfg.Cloud)
		admin := cloudClient(ctx, env, tun, cfg.CloudAdmin)
		compute = must(openstack.NewComputeV2(demo, eo()))
		compute.Microversion = "2.74"
		adminCompute = must(openstack.NewComputeV2(admin, eo()))
		adminCompute.Microversion = "2.74"
		volume = must(openstack.NewBlockStorageV3(demo, eo()))
		volume.Microversion = "3.42" // extending an attached volume
		adminVolume = must(openstack.NewBlockStorageV3(admin, eo()))
		network = must(openstack.NewNetworkV2(demo, eo()))
		image = must(openstack.NewImageV2(demo, eo()))
		for _, f := range must(flavors.ExtractFlavors(must(flavors.ListDetail(compute, nil).AllPages(ctx)))) {
			if f.Name == "m1.tiny" {
				flavorID = f.ID
			}
		}
		Expect(flavorID).NotTo(BeEmpty(), "flavor m1.tiny")
		imgs := must(images.ExtractImages(must(images.List(image, images.ListOpts{Name: "stackgate-tiny"}).AllPages(ctx))))
		Expect(imgs).To(HaveLen(1), "image stackgate-tiny")
		imageID = imgs[0].ID
		n := must(networks.Create(ctx, network, networks.CreateOpts{Name: name("volnet")}).Extract())
		DeferCleanup(func(ctx SpecContext) {
			deleted(ctx, "network", func(ctx context.Context) error { return networks.Delete(ctx, network, n.ID).ExtractErr() })
		})
		must(subnets.Create(ctx, network, subnets.CreateOpts{NetworkID: n.ID, Name: name("volsubnet"), CIDR: "10.98.0.0/24", IPVersion: gophercloud.IPv4}).Extract())
		netID = n.ID
		// The DHCP agent makes its port some time after the subnet: wait
		// for it here, so that the specs' snapshots (taken after this) do
		// not count it as theirs.
		Eventually(func(ctx context.Context) ([]ports.Port, error) {
			pages, err := ports.List(network, ports.ListOpts{NetworkID: n.ID, DeviceOwner: "network:dhcp"}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			return ports.ExtractPorts(pages)
		}).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(time.Second).ShouldNot(BeEmpty(), "network %s's DHCP port", n.ID)
	}, NodeTimeout(25*time.Minute))

	// serverActions describes what nova did to a server, with the traceback
	// of a failed event (admin only): why an attach or a boot did not end.
	serverActions := func(id string) func() string {
		return func() string {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pages, err := instanceactions.List(adminCompute, id, nil).AllPages(ctx)
			if err != nil {
				return "server " + id + "'s actions: " + err.Error()
			}
			acts, err := instanceactions.ExtractInstanceActions(pages)
			if err != nil {
				return "server " + id + "'s actions: " + err.Error()
			}
			var b strings.Builder
			fmt.Fprintf(&b, "server %s's actions:", id)
			for _, a := range acts {
				fmt.Fprintf(&b, "\n  %s %s %s", a.StartTime.Format(time.TimeOnly), a.Action, a.Message)
				d, err := instanceactions.Get(ctx, adminCompute, id, a.RequestID).Extract()
				if err != nil || d.Events == nil {
					continue
				}
				for _, e := range *d.Events {
					host := "?"
					if e.Host != nil {
						host = *e.Host
					}
					fmt.Fprintf(&b, "\n    %s %s on %s", e.Event, e.Result, host)
					if e.Traceback != "" {
						fmt.Fprintf(&b, "\n%s", e.Traceback)
					}
				}
			}
			return b.String()
		}
	}
	// volumeStatus waits for a volume's status, stopping at an error state;
	// why, when it gives up, is what describe (if any) says.
	volumeStatus := func(ctx context.Context, id, want string, timeout time.Duration, describe ...func() string) *volumes.Volume {
		GinkgoHelper()
		var got *volumes.Volume
		Eventually(ctx, func(ctx context.Context) (string, error) {
			v, err := volumes.Get(ctx, adminVolume, id).Extract()
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(v.Status, "error") {
				return v.Status, StopTrying(fmt.Sprintf("volume %s went to %s", id, v.Status))
			}
			got = v
			return v.Status, nil
		}).WithTimeout(timeout).WithPolling(time.Second).Should(Equal(want), func() string {
			msg := "volume " + id
			if got != nil {
				msg += fmt.Sprintf(" (attachments %+v)", got.Attachments)
			}
			for _, d := range describe {
				msg += "\n" + d()
			}
			return msg
		})
		return got
	}
	gone := func(ctx context.Context, what string, get func(context.Context) error) {
		GinkgoHelper()
		Eventually(ctx, get).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Satisfy(isNotFound), "%s deleted", what)
	}
	// disks lists the VM's disks as its libvirtd has them: target and
	// source (pool/image for RBD).
	disks := func(ctx context.Context, node, domain string) map[string]string {
		GinkgoHelper()
		uri := "qemu+unix:///system?socket=" + filepath.Join(env.StateDir, "libvirt", node, "run", "libvirt-sock")
		out, err := exec.CommandContext(ctx, "virsh", "-c", uri, "domblklist", "--details", domain).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "virsh domblklist %s: %s", domain, out)
		got := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 4 && f[0] != "Type" {
				got[f[2]] = f[0] + " " + f[3]
			}
		}
		return got
	}
	capacity := func(ctx context.Context, node, domain, target string) string {
		uri := "qemu+unix:///system?socket=" + filepath.Join(env.StateDir, "libvirt", node, "run", "libvirt-sock")
		out, err := exec.CommandContext(ctx, "virsh", "-c", uri, "domblkinfo", domain, target).CombinedOutput()
		if err != nil {
			return "virsh domblkinfo: " + strings.TrimSpace(string(out))
		}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && k == "Capacity" {
				return strings.TrimSpace(v)
			}
		}
		return strings.TrimSpace(string(out))
	}
	// rbdImages lists the RBD images of the volumes pool.
	rbdImages := func(ctx context.Context) []string {
		GinkgoHelper()
		ns := "controller"
		if i := host.Instance(); i != local.DefaultInstance {
			ns = i + "-" + ns
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "rbd", "-c", filepath.Join(env.StateDir, "etc", "ceph.conf"), "ls", "volumes").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "rbd ls volumes: %s", out)
		return strings.Fields(string(out))
	}

	DescribeTable("boots a server from a volume made from the image, with an extra volume of the alternative type attached, extended and detached",
		func(ctx SpecContext, zoneOf func(devstack.Config) string, node string) {
			zone := zoneOf(cfg)
			before := must(env.Snapshot(ctx))

			root := must(volumes.Create(ctx, volume, volumes.CreateOpts{Name: name("root-" + zone), Size: 1, ImageID: imageID, AvailabilityZone: zone}, nil).Extract())
			DeferCleanup(func(ctx SpecContext) {
				deleted(ctx, "root volume", func(ctx context.Context) error { return volumes.Delete(ctx, volume, root.ID, nil).ExtractErr() })
			})
			extra := must(volumes.Create(ctx, volume, volumes.CreateOpts{Name: name("extra-" + zone), Size: 1, VolumeType: cfg.VolumeTypeAlt, AvailabilityZone: zone}, nil).Extract())
			DeferCleanup(func(ctx SpecContext) {
				deleted(ctx, "extra volume", func(ctx context.Context) error { return volumes.Delete(ctx, volume, extra.ID, nil).ExtractErr() })
			})
			r := volumeStatus(ctx, root.ID, "available", 3*time.Minute)
			Expect(r.Bootable).To(Equal("true"), "a volume made from an image is bootable")
			Expect(r.AvailabilityZone).To(Equal(zone))
			Expect(r.Host).To(Equal(node+"@ceph#ceph"), "the zone's cinder-volume holds it")
			Expect(r.VolumeImageMetadata).To(HaveKeyWithValue("image_id", imageID))
			x := volumeStatus(ctx, extra.ID, "available", 2*time.Minute)
			Expect(x.VolumeType).To(Equal(cfg.VolumeTypeAlt))
			Expect(x.Host).To(Equal(node + "@ceph#ceph"))
			Expect(rbdImages(ctx)).To(ContainElements("volume-"+root.ID, "volume-"+extra.ID), "both are RBD images")

			srv := must(servers.Create(ctx, compute, servers.CreateOpts{
				Name: name("bfv-" + zone), FlavorRef: flavorID, AvailabilityZone: zone,
				Networks: []servers.Network{{UUID: netID}},
				BlockDevice: []servers.BlockDevice{{
					SourceType: servers.SourceVolume, UUID: root.ID, DestinationType: servers.DestinationVolume, BootIndex: 0, DeleteOnTermination: true,
				}},
			}, nil).Extract())
			DeferCleanup(func(ctx SpecContext) {
				deleted(ctx, "server", func(ctx context.Context) error { return servers.Delete(ctx, compute, srv.ID).ExtractErr() })
				gone(ctx, "server "+srv.ID, func(ctx context.Context) error { return servers.Get(ctx, compute, srv.ID).Err })
			})
			Eventually(ctx, serverStatus(compute, srv.ID)).WithTimeout(4*time.Minute).WithPolling(time.Second).Should(Equal("ACTIVE"), "server %s booted from volume %s", srv.ID, root.ID)
			adm := must(servers.Get(ctx, adminCompute, srv.ID).Extract())
			Expect(adm.Host).To(Equal(node), "the server runs in its zone's node")
			Expect(disks(ctx, node, adm.InstanceName)).To(HaveKeyWithValue("vda", "network volumes/volume-"+root.ID), "QEMU opens the root volume through librbd")
			volumeStatus(ctx, root.ID, "in-use", time.Minute, serverActions(srv.ID))

			must(volumeattach.Create(ctx, compute, srv.ID, volumeattach.CreateOpts{VolumeID: extra.ID}).Extract())
			volumeStatus(ctx, extra.ID, "in-use", 3*time.Minute, serverActions(srv.ID))
			// The flavor's ephemeral disk comes before it, so its target is
			// whichever disk is the extra volume's RBD image.
			var target string
			for t, src := range disks(ctx, node, adm.InstanceName) {
				if src == "network volumes/volume-"+extra.ID {
					target = t
				}
			}
			Expect(target).NotTo(BeEmpty(), "the extra volume is attached through librbd: %v", disks(ctx, node, adm.InstanceName))
			Expect(capacity(ctx, node, adm.InstanceName, target)).To(Equal("1073741824"))

			Expect(volumes.ExtendSize(ctx, volume, extra.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr()).To(Succeed(), "extending the attached volume")
			x = volumeStatus(ctx, extra.ID, "in-use", 2*time.Minute, serverActions(srv.ID))
			Expect(x.Size).To(Equal(2))
			Eventually(ctx, func(ctx context.Context) string { return capacity(ctx, node, adm.InstanceName, target) }).
				WithTimeout(time.Minute).WithPolling(time.Second).Should(Equal("2147483648"), "the VM sees the extended volume")

			Expect(volumeattach.Delete(ctx, compute, srv.ID, extra.ID).ExtractErr()).To(Succeed())
			volumeStatus(ctx, extra.ID, "available", 3*time.Minute, serverActions(srv.ID))
			Expect(disks(ctx, node, adm.InstanceName)).NotTo(HaveKey(target), "detached")

			// The detached volume goes to glance as an image of its own.
			up := must(volumes.UploadImage(ctx, volume, extra.ID, volumes.UploadImageOpts{ImageName: name("upload-" + zone), DiskFormat: "raw", ContainerFormat: "bare"}).Extract())
			DeferCleanup(func(ctx SpecContext) {
				deleted(ctx, "uploaded image", func(ctx context.Context) error { return images.Delete(ctx, image, up.ImageID).ExtractErr() })
			})
			Eventually(ctx, func(ctx context.Context) (string, error) {
				i, err := images.Get(ctx, image, up.ImageID).Extract()
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%s %d", i.Status, i.SizeBytes), nil
			}).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Equal("active 2147483648"), "the uploaded image %s", up.ImageID)
			volumeStatus(ctx, extra.ID, "available", 2*time.Minute)
			Expect(images.Delete(ctx, image, up.ImageID).ExtractErr()).To(Succeed())

			Expect(servers.Delete(ctx, compute, srv.ID).ExtractErr()).To(Succeed())
			gone(ctx, "server "+srv.ID, func(ctx context.Context) error { return servers.Get(ctx, compute, srv.ID).Err })
			gone(ctx, "root volume "+root.ID+" (deleted on termination)", func(ctx context.Context) error { return volumes.Get(ctx, volume, root.ID).Err })
			Expect(volumes.Delete(ctx, volume, extra.ID, nil).ExtractErr()).To(Succeed())
			gone(ctx, "extra volume "+extra.ID, func(ctx context.Context) error { return volumes.Get(ctx, volume, extra.ID).Err })
			Expect(rbdImages(ctx)).NotTo(ContainElements("volume-"+root.ID, "volume-"+extra.ID), "their RBD images are gone")
			Eventually(ctx, func(ctx context.Context) ([]devstack.Resource, error) {
				now, err := env.Snapshot(ctx)
				if err != nil {
					return nil, err
				}
				return devstack.Diff(before, now), nil
			}).WithTimeout(2*time.Minute).WithPolling(2*time.Second).Should(BeEmpty(), "nothing left behind")
		},
		Entry("in the first zone, on the controller", func(c devstack.Config) string { return c.FailureDomain }, "controller", SpecTimeout(15*time.Minute)),
		Entry("in the second zone, on the worker", func(c devstack.Config) string { return c.FailureDomainAlt }, "worker", SpecTimeout(15*time.Minute)),
	)
})
