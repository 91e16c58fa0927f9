package framework_test

import (
	"errors"
	"flag"
	"fmt"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/cluster-api/test/framework/clusterctl"
	"sigs.k8s.io/yaml"

	sgframework "github.com/stackgate/stackgate/framework"
)

// The examples import stackgate's framework as sgframework, so that it does
// not clash with Cluster API's sigs.k8s.io/cluster-api/test/framework, which
// every provider's suite imports too.

// A suite of its own: node 1 brings DevStack up (or reuses the local one),
// every process attaches with its own tunnel, the e2e configuration is
// loaded as the Cluster API test framework loads it, and specs pin
// templates, wait for the second zone and reach the bastion.
func ExampleSetupDevStack() {
	var (
		flags     sgframework.E2EFlags
		e2eConfig *clusterctl.E2EConfig
		ds        *sgframework.DevStack
	)
	// A flag set of the suite's choice; a suite with flags of its own (CAPO's
	// -config-path, -artifacts-folder, -skip-cleanup) fills E2EFlags instead.
	if err := flags.Bind(flag.CommandLine); err != nil {
		panic(err)
	}

	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		return sgframework.SetupDevStack(ctx, sgframework.SetupDevStackInput{E2EConfig: flags.MustLoadE2EConfig(ctx)})
	}, func(ctx SpecContext, data []byte) {
		e2eConfig = flags.MustLoadE2EConfig(ctx)
		ds = sgframework.UseDevStack(ctx, data) // sets OPENSTACK_CLOUD_YAML_B64 & co. for clusterctl
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
		sgframework.TearDownDevStack(ctx, sgframework.TearDownDevStackInput{DevStack: ds, ArtifactFolder: flags.ArtifactFolder})
	})
	ReportAfterSuite("JUnit", func(r Report) { sgframework.WriteJUnitReport(r, "e2e", flags.ArtifactFolder) })

	Describe("multi-az", Label("multi-az"), func() {
		It("creates a cluster pinned to the first zone", func(ctx SpecContext) {
			sgframework.WaitForSecondAZ(ctx, sgframework.WaitForSecondAZInput{DevStack: ds}, e2eConfig.GetIntervals("multi-az", "wait-alt-az")...)
			tmpl, err := os.ReadFile("data/kustomize/cluster-template.yaml")
			Expect(err).NotTo(HaveOccurred())
			pinned, err := sgframework.PinToFailureDomain(tmpl, e2eConfig.MustGetVariable("OPENSTACK_FAILURE_DOMAIN"))
			Expect(err).NotTo(HaveOccurred())
			_ = pinned // hand it to clusterctl as the flavor's template

			key, err := ssh.ParsePrivateKey([]byte(os.Getenv("SSH_PRIVATE_KEY")))
			Expect(err).NotTo(HaveOccurred())
			bastion, err := sgframework.BastionDialer(ctx, sgframework.BastionDialerInput{
				Tunnel: ds.Tunnel, Address: "172.24.4.10", User: "cirros", Signer: key,
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a public image's key is unknown in advance
			}, e2eConfig.GetIntervals("multi-az", "wait-bastion-ssh")...)
			Expect(err).NotTo(HaveOccurred())
			defer bastion.Close()
			res, err := sgframework.RunOnNode(ctx, sgframework.RunOnNodeInput{
				Bastion: bastion, Address: "10.6.0.12", Command: "sudo journalctl -u kubelet --no-pager",
			})
			Expect(err).NotTo(HaveOccurred())
			_ = res.Stdout
		})
	})
}

// A suite that returns data of its own from SynchronizedBeforeSuite, as
// CAPO's does: node 1 brings DevStack up before its own set-up, which needs
// the cloud (CAPO's Node1BeforeSuite reads OPENSTACK_CLOUD_YAML_FILE and
// creates a key pair), and carries the set-up beside its own data.
func ExampleSetupDevStackData() {
	var (
		configPath string // the suite's own -config-path flag
		ds         *sgframework.DevStack
	)
	type beforeSuiteData struct {
		Own      []byte                 `json:"own"` // what the suite returned before
		DevStack *sgframework.SetupData `json:"devStack"`
	}

	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		// The e2e configuration may be nil: defaults, and the variables of
		// the process environment.
		conf, err := sgframework.LoadE2EConfig(ctx, configPath)
		Expect(err).NotTo(HaveOccurred())
		sd := sgframework.SetupDevStackData(ctx, sgframework.SetupDevStackInput{E2EConfig: conf})
		ds = sgframework.UseSetupData(ctx, sd)        // OPENSTACK_CLOUD_YAML_FILE & co. for what follows
		own := []byte("artifactFolder: _artifacts\n") // CAPO: shared.Node1BeforeSuite(ctx, e2eCtx)
		out, err := yaml.Marshal(beforeSuiteData{Own: own, DevStack: sd})
		Expect(err).NotTo(HaveOccurred())
		return out
	}, func(ctx SpecContext, data []byte) {
		var in beforeSuiteData
		Expect(yaml.UnmarshalStrict(data, &in)).To(Succeed())
		if ds == nil { // process 1 attached in the first function already
			ds = sgframework.UseSetupData(ctx, in.DevStack)
		}
		_ = in.Own // CAPO: shared.AllNodesBeforeSuite(e2eCtx, in.Own)
	})
}

func ExamplePinToFailureDomain() {
	template := []byte(`apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: ${CLUSTER_NAME}-md-0
spec:
  replicas: ${WORKER_MACHINE_COUNT}
  template:
    spec:
      failureDomain: ${OPENSTACK_FAILURE_DOMAIN}
      version: ${KUBERNETES_VERSION}
`)
	pinned, err := sgframework.PinToFailureDomain(template, "testaz1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(pinned))

	_, err = sgframework.PinToFailureDomain(pinned, "testaz2")
	fmt.Println(err)
	fmt.Println(errors.Is(err, sgframework.ErrMultiAZ))
	// Output:
	// apiVersion: cluster.x-k8s.io/v1beta2
	// kind: MachineDeployment
	// metadata:
	//   name: ${CLUSTER_NAME}-md-0
	// spec:
	//   replicas: ${WORKER_MACHINE_COUNT}
	//   template:
	//     spec:
	//       failureDomain: testaz1
	//       version: ${KUBERNETES_VERSION}
	// pin to failure domain "testaz2": MachineDeployment "${CLUSTER_NAME}-md-0": spec.template.spec.failureDomain: is the zone "testaz1", and pinning to testaz2 would change where machines go: the template is multi-AZ; use it unpinned (errors.Is(err, framework.ErrMultiAZ)), mark it with the annotation stackgate.io/multi-az: "true", or set the field to testaz2 or ${OPENSTACK_FAILURE_DOMAIN}
	// true
}
