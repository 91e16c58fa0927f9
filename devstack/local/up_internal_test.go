//go:build linux

package local

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack"
)

var _ = Describe("a bootstrapped state and the configuration Up is given", func() {
	It("refuses a virt it does not know, naming the option, the variable and the choices", func() {
		_, err := New(WithStateDir(GinkgoT().TempDir()), WithVirt("kvm"))
		Expect(err).To(MatchError(`local host: virt "kvm" (WithVirt or STACKGATE_LOCAL_VIRT): use "qemu" (real VMs) or "fake" (nova's fake driver)`))
		GinkgoT().Setenv(EnvVirt, "fake")
		h, err := New(WithStateDir(GinkgoT().TempDir()))
		Expect(err).NotTo(HaveOccurred())
		Expect(h.Virt()).To(Equal(VirtFake), "the variable chooses when no option does")
		Expect(h.packages()).NotTo(ContainElement("qemu-system-x86"), "the fake driver needs no QEMU")
	})

	It("names each variable whose value differs from the one the state was built with", func() {
		h, err := New(WithInstance("cfgtest"), WithStateDir(GinkgoT().TempDir()), WithVirt(VirtQEMU))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.MkdirAll(h.stateDir, 0o700)).To(Succeed())
		Expect(h.changedSince(devstack.DefaultConfig())).To(BeEmpty(), "a state without the record: nothing to compare")

		// A record written before state versions were: the configuration
		// alone, version 1, which this code rebuilds.
		b, err := json.Marshal(devstack.DefaultConfig())
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(h.path(fileBootstrapped), b, 0o600)).To(Succeed())
		Expect(h.changedSince(devstack.DefaultConfig())).To(Equal(fmt.Sprintf("state version was 1, now %d", stateVersion)))

		b, err = json.Marshal(bootstrapRecord{Config: devstack.DefaultConfig(), StateVersion: stateVersion, Virt: VirtFake})
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(h.path(fileBootstrapped), b, 0o600)).To(Succeed())
		Expect(h.changedSince(devstack.DefaultConfig())).To(Equal("virt was fake, now qemu"), "servers that were the fake driver's are rebuilt as VMs")

		b, err = json.Marshal(bootstrapRecord{Config: devstack.DefaultConfig(), StateVersion: stateVersion, Virt: h.virt})
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(h.path(fileBootstrapped), b, 0o600)).To(Succeed())
		Expect(h.changedSince(devstack.DefaultConfig())).To(BeEmpty())
		Expect(h.changedSince(devstack.Config{})).To(BeEmpty(), "unset variables are their defaults")

		cfg := devstack.DefaultConfig()
		cfg.FloatingRange = netip.MustParsePrefix("172.25.0.0/24")
		cfg.FailureDomain = "az1"
		Expect(h.changedSince(cfg)).To(Equal("FLOATING_RANGE was 172.24.4.0/24, now 172.25.0.0/24, OPENSTACK_FAILURE_DOMAIN was testaz1, now az1"))

		Expect(os.WriteFile(h.path(fileBootstrapped), []byte("{"), 0o600)).To(Succeed())
		Expect(h.changedSince(cfg)).To(ContainSubstring("is unreadable"), "a record that cannot be read forces a rebuild")
	})

	It("records the state version, reads a record without one as version 1 and names another", func() {
		h, err := New(WithInstance("cfgtest"), WithStateDir(GinkgoT().TempDir()))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.MkdirAll(h.stateDir, 0o700)).To(Succeed())
		Expect(h.bootstrapped()).To(BeFalse())
		Expect(h.recordBootstrap(devstack.DefaultConfig())).To(Succeed())
		Expect(h.bootstrapped()).To(BeTrue())
		rec, err := h.readBootstrap()
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.StateVersion).To(Equal(stateVersion))
		Expect(rec.Config).To(Equal(devstack.DefaultConfig()))
		Expect(h.changedSince(devstack.DefaultConfig())).To(BeEmpty())

		b, err := json.Marshal(bootstrapRecord{Config: devstack.DefaultConfig(), StateVersion: stateVersion + 1})
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(h.path(fileBootstrapped), b, 0o600)).To(Succeed())
		Expect(h.changedSince(devstack.DefaultConfig())).To(Equal(fmt.Sprintf("state version was %d, now %d", stateVersion+1, stateVersion)))
	})
})
