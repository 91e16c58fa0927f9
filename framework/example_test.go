package framework_test

import (
	"flag"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"

	"github.com/stackgate/stackgate/framework"
)

// A suite in the style of CAPO's test/e2e: node 1 brings DevStack up (or
// reuses the local one), every process attaches with its own tunnel, the
// e2e configuration is loaded through the Cluster API test framework, and
// specs pin templates, wait for the second zone and reach the bastion.
func ExampleSetupDevStack() {
	var (
		flags     framework.E2EFlags
		e2eConfig *clusterctl.E2EConfig
		ds        *framework.DevStack
	)
	flags.Bind(flag.CommandLine)

	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		return framework.SetupDevStack(ctx, framework.SetupDevStackInput{E2EConfig: flags.MustLoadE2EConfig(ctx)})
	}, func(ctx SpecContext, data []byte) {
		e2eConfig = flags.MustLoadE2EConfig(ctx)
		ds = framework.UseDevStack(ctx, data) // sets OPENSTACK_CLOUD_YAML_B64 & co. for clusterctl
	})
	SynchronizedAfterSuite(func() {
		if ds != nil { // nil when SetupDevStack failed, which said why
			_ = ds.Close()
		}
	}, func(ctx SpecContext) {
		if ds == nil {
			return
		}
		// The local environment keeps running; a host to delete after the
		// run takes Host, Down: true and SkipCleanup: flags.SkipCleanup.
		framework.TearDownDevStack(ctx, framework.TearDownDevStackInput{DevStack: ds, ArtifactFolder: flags.ArtifactFolder})
	})
	ReportAfterSuite("JUnit", func(r Report) { framework.WriteJUnitReport(r, "e2e", flags.ArtifactFolder) })

	Describe("multi-az", Label("multi-az"), func() {
		It("creates a cluster pinned to the first zone", func(ctx SpecContext) {
			framework.WaitForSecondAZ(ctx, framework.WaitForSecondAZInput{DevStack: ds}, e2eConfig.GetIntervals("multi-az", "wait-alt-az")...)
			tmpl, err := os.ReadFile("data/kustomize/cluster-template.yaml")
			Expect(err).NotTo(HaveOccurred())
			pinned, err := framework.PinToFailureDomain(tmpl, e2eConfig.MustGetVariable("OPENSTACK_FAILURE_DOMAIN"))
			Expect(err).NotTo(HaveOccurred())
			_ = pinned // hand it to clusterctl as the flavor's template

			key, err := ssh.ParsePrivateKey([]byte(os.Getenv("SSH_PRIVATE_KEY")))
			Expect(err).NotTo(HaveOccurred())
			bastion, err := framework.BastionDialer(ctx, framework.BastionDialerInput{
				Tunnel: ds.Tunnel, Address: "172.24.4.10", User: "cirros", Signer: key,
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a public image's key is unknown in advance
			}, e2eConfig.GetIntervals("multi-az", "wait-bastion-ssh")...)
			Expect(err).NotTo(HaveOccurred())
			defer bastion.Close()
			res, err := framework.RunOnNode(ctx, framework.RunOnNodeInput{
				Bastion: bastion, Address: "10.6.0.12", Command: "sudo journalctl -u kubelet --no-pager",
			})
			Expect(err).NotTo(HaveOccurred())
			_ = res.Stdout
		})
	})
}
