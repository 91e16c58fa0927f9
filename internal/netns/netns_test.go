//go:build linux

package netns_test

import (
	"context"
	"os"
	"os/exec"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/internal/netns"
)

var _ = Describe("Topology", func() {
	BeforeEach(func() {
		if os.Geteuid() != 0 {
			Skip("network namespaces need root; CI runs as root")
		}
	})

	It("joins namespaces over a bridge and removes everything it made", func(ctx SpecContext) {
		topo := netns.New()
		DeferCleanup(func(ctx context.Context) { _ = topo.Cleanup(ctx) })
		a, err := topo.AddNamespace(ctx, netns.UniqueName("nta"))
		Expect(err).NotTo(HaveOccurred())
		b, err := topo.AddNamespace(ctx, netns.UniqueName("ntb"))
		Expect(err).NotTo(HaveOccurred())

		_, err = topo.AddNamespace(ctx, a.Name)
		Expect(err).To(MatchError(ContainSubstring(a.Name + `" already exists`)))

		Expect(topo.AddBridge(ctx, netns.Link{Name: "br0", Namespace: b, Address: "192.0.2.1/24"})).To(Succeed())
		Expect(topo.AddVeth(ctx,
			netns.Link{Name: "va", Namespace: a, Address: "192.0.2.2/24"},
			netns.Link{Name: "vb", Namespace: b, Master: "br0"})).To(Succeed())
		Expect(a.Run(ctx, "ping", "-c1", "-W2", "192.0.2.1")).Error().NotTo(HaveOccurred())

		Expect(topo.Cleanup(ctx)).To(Succeed())
		Expect(netns.Exists(a.Name)).To(BeFalse(), "namespace %s left behind", a.Name)
		Expect(netns.Exists(b.Name)).To(BeFalse(), "namespace %s left behind", b.Name)
		Expect(topo.Cleanup(ctx)).To(Succeed(), "a second Cleanup is a no-op")
	})

	It("deletes a link whose peer's namespace is going, and reports a link it could not delete", func(ctx SpecContext) {
		topo := netns.New()
		DeferCleanup(func(ctx context.Context) { _ = topo.Cleanup(ctx) })
		peer, err := topo.AddNamespace(ctx, netns.UniqueName("ntp"))
		Expect(err).NotTo(HaveOccurred())
		root := netns.UniqueName("ntr")
		Expect(topo.AddVeth(ctx, netns.Link{Name: root}, netns.Link{Name: "peer", Namespace: peer})).To(Succeed())

		// The kernel removes a deleted namespace's veth pairs when it gets to
		// it: the root end may be there or not when DeleteLink runs.
		Expect(netns.DeleteNamespace(ctx, peer.Name)).To(Succeed())
		Expect(netns.DeleteLink(ctx, nil, root)).To(Succeed())
		Expect(exec.CommandContext(ctx, "ip", "link", "show", root).Run()).NotTo(Succeed(), "link %s gone", root)
		Expect(netns.DeleteLink(ctx, nil, root)).To(Succeed(), "a link already gone")

		other, err := topo.AddNamespace(ctx, netns.UniqueName("nto"))
		Expect(err).NotTo(HaveOccurred())
		Expect(netns.DeleteLink(ctx, other, "lo")).To(MatchError(ContainSubstring("link delete lo")), "loopback cannot be deleted")
	})
})
