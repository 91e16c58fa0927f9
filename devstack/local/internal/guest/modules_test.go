package guest

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("loadOrder", func() {
	byName := map[string]string{
		"virtio_net": "kernel/drivers/net/virtio_net.ko", "net_failover": "kernel/drivers/net/net_failover.ko",
		"failover": "kernel/net/core/failover.ko", "virtio": "kernel/drivers/virtio/virtio.ko",
		"virtio_ring": "kernel/drivers/virtio/virtio_ring.ko", "virtio_pci": "kernel/drivers/virtio/virtio_pci.ko",
		"a": "a.ko", "b": "b.ko", "virtio_blk": "kernel/drivers/block/virtio_blk.ko", "unix": "",
	}
	deps := map[string][]string{
		"kernel/drivers/net/virtio_net.ko":     {"net_failover", "virtio", "virtio_ring"},
		"kernel/drivers/net/net_failover.ko":   {"failover"},
		"kernel/drivers/virtio/virtio_pci.ko":  {"virtio", "virtio_ring"},
		"kernel/drivers/virtio/virtio_ring.ko": {"virtio"},
		"a.ko":                                 {"b"}, "b.ko": {"a"}, "kernel/drivers/block/virtio_blk.ko": {"unix", "virtio"},
	}
	depends := func(p string) ([]string, error) { return deps[p], nil }

	It("puts every module after what it depends on, each once", func() {
		order, err := loadOrder(byName, depends, []string{"virtio_pci", "virtio-net"})
		Expect(err).NotTo(HaveOccurred())
		Expect(order).To(Equal([]string{
			"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio_pci.ko",
			"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko",
		}))
	})
	It("loads nothing for a module built into the kernel", func() {
		order, err := loadOrder(byName, depends, []string{"unix", "virtio_blk"})
		Expect(err).NotTo(HaveOccurred())
		Expect(order).To(Equal([]string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/block/virtio_blk.ko"}))
	})
	It("names a module that is not there, and who needs it", func() {
		_, err := loadOrder(byName, depends, []string{"isofs"})
		Expect(err).To(MatchError(ContainSubstring("kernel module isofs: not in the module tree")))
		deps["kernel/drivers/virtio/virtio.ko"] = []string{"missing_dep"}
		DeferCleanup(func() { delete(deps, "kernel/drivers/virtio/virtio.ko") })
		_, err = loadOrder(byName, depends, []string{"virtio_pci"})
		Expect(err).To(MatchError(ContainSubstring("kernel module missing_dep (needed by virtio): not in the module tree")))
	})
	It("refuses a dependency cycle instead of looping", func() {
		_, err := loadOrder(byName, depends, []string{"a"})
		Expect(err).To(MatchError(ContainSubstring("dependency cycle")))
	})
	It("passes on an error reading a module", func() {
		_, err := loadOrder(byName, func(string) ([]string, error) { return nil, fmt.Errorf("unreadable") }, []string{"a"})
		Expect(err).To(MatchError("unreadable"))
	})
	It("spells names as modprobe does", func() {
		Expect(moduleName("kernel/fs/nls/nls_iso8859-1.ko")).To(Equal("nls_iso8859_1"))
	})
})
