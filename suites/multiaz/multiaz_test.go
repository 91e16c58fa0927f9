package multiaz_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/yamlprocessor"
	"sigs.k8s.io/yaml"

	"github.com/stackgate/stackgate/data"
	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
	"github.com/stackgate/stackgate/tunnel"
)

var _ = Describe("multi-az", Label("multi-az"), func() {
	var prefix, az1, az2 string

	BeforeEach(func(ctx SpecContext) {
		az1, az2 = suite.DevStack.Config().FailureDomain, suite.DevStack.Config().FailureDomainAlt
		framework.WaitForSecondAZ(ctx, framework.WaitForSecondAZInput{DevStack: suite.DevStack}, suite.E2EConfig.GetIntervals("multi-az", "wait-alt-az")...)
		prefix = framework.UniqueName("sg-maz")
		framework.DeferLeakCheck(ctx, framework.DeferLeakCheckInput{DevStack: suite.DevStack, NamePrefix: prefix},
			suite.E2EConfig.GetIntervals("multi-az", "wait-teardown")...)
	})

	It("boots servers and volumes in both availability zones where asked", func(ctx SpecContext) {
		c := suite.DevStack.Clients(ctx)
		tn := framework.CreateTenantNetwork(ctx, framework.CreateTenantNetworkInput{Clients: c, Name: prefix, CIDR: "10.93.0.0/24"})
		for _, az := range []string{az1, az2} {
			s := framework.CreateServer(ctx, framework.CreateServerInput{
				Clients: c, Name: prefix + "-" + az, AvailabilityZone: az, Networks: []servers.Network{{UUID: tn.Network.ID}},
				DeleteIntervals: suite.E2EConfig.GetIntervals("multi-az", "wait-server-deleted"),
			}, suite.E2EConfig.GetIntervals("multi-az", "wait-server-active")...)
			framework.ExpectServersInAZ(ctx, framework.ExpectServersInAZInput{Clients: c, ServerIDs: []string{s.ID}, AvailabilityZone: az})
			v := framework.CreateVolume(ctx, framework.CreateVolumeInput{
				Clients: c, Name: prefix + "-" + az, AvailabilityZone: az,
				DeleteIntervals: suite.E2EConfig.GetIntervals("multi-az", "wait-volume-deleted"),
			}, suite.E2EConfig.GetIntervals("multi-az", "wait-volume-available")...)
			framework.ExpectVolumesInAZ(ctx, framework.ExpectVolumesInAZInput{Clients: c, VolumeIDs: []string{v.ID}, AvailabilityZone: az})
		}
		// The admin view names the compute host: the second zone's server runs on the worker.
		admin := suite.DevStack.AdminClients(ctx)
		pages, err := servers.List(admin.Compute, servers.ListOpts{AllTenants: true, Name: "^" + prefix + "-"}).AllPages(ctx)
		Expect(err).NotTo(HaveOccurred(), "Couldn't list servers %q as admin", prefix)
		all, err := servers.ExtractServers(pages)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(2), "Expected one server per availability zone named %s-*", prefix)
		hosts := map[string]string{}
		for _, s := range all {
			hosts[s.AvailabilityZone] = s.Host
		}
		Expect(hosts[az1]).NotTo(Equal(hosts[az2]), "Servers in %s and %s run on the same compute host %q", az1, az2, hosts[az1])
	})

	It("pins every machine of a cluster template to the first availability zone", func(ctx SpecContext) {
		// Variables a spec chooses itself, as CAPO's specs do for the class name.
		specVars := map[string]string{"CLUSTER_NAME": prefix, "CLUSTER_CLASS_NAME": prefix + "-class"}
		vars := func(name string) (string, error) {
			if v, ok := specVars[name]; ok {
				return v, nil
			}
			if v, ok := os.LookupEnv(name); ok {
				return v, nil
			}
			if v, ok := suite.E2EConfig.Variables[name]; ok {
				return v, nil
			}
			return "", fmt.Errorf("variable %s is not set", name)
		}
		proc := yamlprocessor.NewSimpleProcessor()
		for _, name := range []string{data.ClusterTemplate, data.ClusterTopologyTemplate} {
			tmpl, err := fs.ReadFile(data.E2E, name)
			Expect(err).NotTo(HaveOccurred())
			pinned, err := framework.PinToFailureDomain(tmpl, "${"+devstack.VarFailureDomain+"}")
			Expect(err).NotTo(HaveOccurred(), "Couldn't pin template %s", name)
			rendered, err := proc.Process(pinned, vars)
			Expect(err).NotTo(HaveOccurred(), "clusterctl couldn't render pinned template %s", name)
			placements := machinePlacements(rendered)
			Expect(placements).NotTo(BeEmpty(), "Template %s places no machine; nothing was checked", name)
			for field, zone := range placements {
				Expect(zone).To(Equal(az1), "Template %s: %s would place machines in %q, not %q", name, field, zone, az1)
			}
		}
		multi, err := fs.ReadFile(data.E2E, data.ClusterMultiAZTemplate)
		Expect(err).NotTo(HaveOccurred())
		out, err := framework.PinToFailureDomain(multi, az1)
		Expect(err).NotTo(HaveOccurred())
		Expect(bytes.Equal(out, multi)).To(BeTrue(), "A template marked %s must be left alone", framework.MultiAZAnnotation)
		Expect(string(multi)).To(ContainSubstring(devstack.VarFailureDomainAlt), "The multi-AZ template should use the second zone")
	})

	It("reaches a server with a floating IP through the bastion dialer", func(ctx SpecContext) {
		if suite.DevStack.Environment.FakeServers && suite.DevStack.Environment.Host != "local" {
			Skip("servers are records only here and a port endpoint needs the local host's controller namespace; host is " + suite.DevStack.Environment.Host)
		}
		c := suite.DevStack.Clients(ctx)
		ext := suite.DevStack.Variables[devstack.VarExternalNetworkID]
		Expect(ext).NotTo(BeEmpty(), "%s is not set", devstack.VarExternalNetworkID)
		tn := framework.CreateTenantNetwork(ctx, framework.CreateTenantNetworkInput{Clients: c, Name: prefix, CIDR: "10.94.0.0/24", ExternalNetworkID: ext})
		port := framework.CreatePort(ctx, framework.CreatePortInput{Clients: c, Name: prefix, NetworkID: tn.Network.ID})
		_, user := newKey()
		hostPriv, host := newKey()
		login, fixedIP := "root", port.FixedIPs[0].IPAddress
		server := framework.CreateServerInput{
			Clients: c, Name: prefix, AvailabilityZone: az1, Networks: []servers.Network{{Port: port.ID}},
			DeleteIntervals: suite.E2EConfig.GetIntervals("multi-az", "wait-server-deleted"),
		}
		if suite.DevStack.Environment.FakeServers {
			// Nothing boots behind the server: a namespace plugged into its
			// port, with OpenSSH's sshd, stands in for its VM.
			framework.CreateServer(ctx, server, suite.E2EConfig.GetIntervals("multi-az", "wait-server-active")...)
			ep := startPortEndpoint(ctx, portEndpointInput{
				Port: port, Subnet: tn.Subnet, NetworkID: tn.Network.ID, StateDir: suite.DevStack.Environment.StateDir, AuthorizedKey: user.PublicKey(), HostKey: hostPriv,
			})
			fixedIP = ep.fixedIP
		} else {
			// The server's VM authorizes the key pair and presents the host
			// key its user-data gives it (cloud-init's ssh_keys).
			server.KeyName = framework.CreateKeyPair(ctx, framework.CreateKeyPairInput{Clients: c, Name: prefix, PublicKey: user.PublicKey()}).Name
			server.UserData = cloudConfigHostKey(hostPriv)
			login = "cirros"
			framework.CreateServer(ctx, server, suite.E2EConfig.GetIntervals("multi-az", "wait-server-active")...)
		}
		waitForPortStatus(ctx, c, port.ID, "ACTIVE", suite.E2EConfig.GetIntervals("multi-az", "wait-port-active")...)
		fip := framework.CreateFloatingIP(ctx, framework.CreateFloatingIPInput{Clients: c, ExternalNetworkID: ext, PortID: port.ID, Description: prefix})
		waitForFloatingIPStatus(ctx, c, fip.ID, "ACTIVE", suite.E2EConfig.GetIntervals("multi-az", "wait-floating-ip")...)

		// The address comes from the cluster's status, as CAPO's log collector reads it.
		cluster := &unstructured.Unstructured{}
		cluster.SetGroupVersionKind(framework.OpenStackClusterGVK)
		cluster.SetNamespace("default")
		cluster.SetName(prefix)
		Expect(unstructured.SetNestedField(cluster.Object, fip.FloatingIP, "status", "bastion", "floatingIP")).To(Succeed())
		b, err := framework.BastionDialer(ctx, framework.BastionDialerInput{
			Tunnel: suite.DevStack.Tunnel, OpenStackCluster: cluster, User: login, Signer: user,
			HostKeyCallback: tunnel.PinnedHostKey(host.PublicKey()), HostKeyAlgorithms: tunnel.HostKeyAlgorithms(host.PublicKey()),
		}, suite.E2EConfig.GetIntervals("multi-az", "wait-bastion-ssh")...)
		Expect(err).NotTo(HaveOccurred(), "Couldn't reach the bastion at floating IP %s (fixed IP %s)", fip.FloatingIP, fixedIP)
		DeferCleanup(b.Close)

		// sshd sees the connection arrive at the fixed IP: the floating IP was NATed by the router.
		res, err := b.Run(ctx, `echo "$SSH_CONNECTION"`)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ExitStatus).To(Equal(0), "stderr: %s", res.Stderr)
		Expect(strings.Fields(string(res.Stdout))).To(HaveLen(4))
		Expect(strings.Fields(string(res.Stdout))[2:]).To(Equal([]string{fixedIP, "22"}), "The bastion's sshd saw %q", res.Stdout)

		// On to a node behind the bastion: here the same endpoint, by its fixed IP.
		res, err = framework.RunOnNode(ctx, framework.RunOnNodeInput{Bastion: b, Address: fixedIP, User: login, Command: `echo "$SSH_CONNECTION"; ip -o -4 addr show scope global`})
		Expect(err).NotTo(HaveOccurred(), "Couldn't run a command on node %s through the bastion", fixedIP)
		Expect(res.ExitStatus).To(Equal(0), "stderr: %s", res.Stderr)
		Expect(string(res.Stdout)).To(ContainSubstring(fixedIP+" 22"), "The node's sshd saw %q", res.Stdout)
		Expect(string(res.Stdout)).To(ContainSubstring(fixedIP+"/"), "The node should hold its fixed IP")
	})
})

// machinePlacements returns, for each field of a rendered template that
// decides where machines go, the zone it names.
func machinePlacements(rendered []byte) map[string]string {
	out := map[string]string{}
	for i, doc := range strings.Split(string(rendered), "\n---") {
		var obj map[string]interface{}
		Expect(yaml.Unmarshal([]byte(doc), &obj)).To(Succeed(), "document %d of the rendered template", i+1)
		if obj == nil {
			continue
		}
		u := unstructured.Unstructured{Object: obj}
		id := u.GetKind() + "/" + u.GetName()
		zones := func(field string, path ...string) {
			l, found, err := unstructured.NestedStringSlice(obj, path...)
			Expect(err).NotTo(HaveOccurred(), "%s %s", id, field)
			Expect(found).To(BeTrue(), "%s has no %s: its control plane machines could go to any zone", id, field)
			Expect(l).To(HaveLen(1), "%s %s", id, field)
			out[id+" "+field] = l[0]
		}
		str := func(field string, path ...string) {
			s, found, err := unstructured.NestedString(obj, path...)
			Expect(err).NotTo(HaveOccurred(), "%s %s", id, field)
			Expect(found).To(BeTrue(), "%s has no %s: its machines could go to any zone", id, field)
			out[id+" "+field] = s
		}
		switch u.GetKind() {
		case "OpenStackCluster":
			zones("spec.controlPlaneAvailabilityZones", "spec", "controlPlaneAvailabilityZones")
		case "OpenStackClusterTemplate":
			zones("spec.template.spec.controlPlaneAvailabilityZones", "spec", "template", "spec", "controlPlaneAvailabilityZones")
		case "MachineDeployment":
			str("spec.template.spec.failureDomain", "spec", "template", "spec", "failureDomain")
		case "Cluster":
			mds, found, err := unstructured.NestedSlice(obj, "spec", "topology", "workers", "machineDeployments")
			Expect(err).NotTo(HaveOccurred())
			if !found {
				continue
			}
			for j, md := range mds {
				m, ok := md.(map[string]interface{})
				Expect(ok).To(BeTrue())
				fd, _, _ := unstructured.NestedString(m, "failureDomain")
				out[fmt.Sprintf("%s spec.topology.workers.machineDeployments[%d].failureDomain", id, j)] = fd
			}
		case "OpenStackMachineTemplate":
			az, found, err := unstructured.NestedMap(obj, "spec", "template", "spec", "rootVolume", "availabilityZone")
			Expect(err).NotTo(HaveOccurred())
			if !found {
				continue
			}
			// {from: Machine} follows the machine's failure domain, checked above.
			if az["from"] == "Machine" {
				continue
			}
			Expect(az["from"]).To(Equal("Name"), "%s rootVolume.availabilityZone.from", id)
			out[id+" spec.template.spec.rootVolume.availabilityZone.name"], _ = az["name"].(string)
		}
	}
	return out
}
