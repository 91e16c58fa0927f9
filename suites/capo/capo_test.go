package capo_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/yamlprocessor"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/framework"
	"github.com/stackgate/stackgate/tunnel"
)

// The local host seeds one image, stackgate-tiny; CAPO's node and bastion
// images are imported from it by ORC (managementPolicy: unmanaged).
const localImage = "stackgate-tiny"

// notUsedHere are variables CAPO's e2e templates name for what happens after
// a node boots (CNI, cloud provider, e2e images): no node boots here.
var notUsedHere = map[string]string{
	"CNI_RESOURCES":                          "",
	"CCM_RESOURCES":                          "",
	"E2E_IMAGE_URL":                          "http://images.invalid/e2e.img",
	"DOWNLOAD_E2E_IMAGE":                     "false",
	"OPENSTACK_IMAGE_URL":                    "http://images.invalid/node.img",
	"OPENSTACK_BASTION_IMAGE_URL":            "http://images.invalid/bastion.img",
	"OPENSTACK_BASTION_IMAGE_HASH":           "0",
	"OPENSTACK_BASTION_IMAGE_HASH_ALGORITHM": "sha256",
}

var _ = Describe("CAPO's controllers on the DevStack", Label("capo"), Serial, func() {
	var (
		namespace, clusterName string
		vars                   map[string]string
		machineKey             ssh.Signer
	)

	BeforeEach(func(ctx SpecContext) {
		clusterName = framework.UniqueName("capo")
		namespace = clusterName
		createNamespace(ctx, namespace)
		machineKey = createKeypair(ctx, clusterName)
		vars = map[string]string{
			"CLUSTER_NAME":                 clusterName,
			"NAMESPACE":                    namespace,
			"OPENSTACK_SSH_KEY_NAME":       clusterName,
			"OPENSTACK_IMAGE_NAME":         localImage,
			"OPENSTACK_BASTION_IMAGE_NAME": localImage,
		}
	})

	DescribeTable("builds a flavor in testaz1, reports both zones and deletes everything",
		func(ctx SpecContext, flavor string, check func(ctx SpecContext, namespace, clusterName string)) {
			framework.DeferLeakCheck(ctx, framework.DeferLeakCheckInput{DevStack: suite.DevStack}, suite.E2EConfig.GetIntervals("capo", "wait-delete-cluster")...)
			failureDomain := suite.E2EConfig.MustGetVariable("OPENSTACK_FAILURE_DOMAIN")
			altDomain := suite.E2EConfig.MustGetVariable("OPENSTACK_FAILURE_DOMAIN_ALT")

			all := applyAndWaitForServers(ctx, flavor, namespace, clusterName, vars)
			for _, s := range all {
				Expect(s.AvailabilityZone).To(Equal(failureDomain), "server %s", s.Name)
			}

			By("checking that status.failureDomains lists both zones, only " + failureDomain + " for control planes")
			Eventually(func(g Gomega, ctx context.Context) {
				osc := getOpenStackCluster(ctx, namespace, clusterName)
				fds, _, _ := unstructured.NestedMap(osc.Object, "status", "failureDomains")
				g.Expect(fds).To(HaveKey(failureDomain))
				g.Expect(fds).To(HaveKey(altDomain))
				g.Expect(fds[failureDomain]).To(HaveKeyWithValue("controlPlane", true), "the pinned zone takes control planes")
				g.Expect(fds[altDomain]).NotTo(HaveKeyWithValue("controlPlane", true), "the other zone takes none")
			}).WithContext(ctx).WithTimeout(timeout("wait-cluster")).WithPolling(polling("wait-cluster")).Should(Succeed())

			if suite.DevStack.Environment.FakeServers {
				AddReportEntry("bastion SSH", "not checked: servers are records only here (STACKGATE_LOCAL_VIRT=fake), no VM answers")
			} else {
				checkBastion(ctx, namespace, clusterName, all, machineKey)
			}
			if check != nil {
				check(ctx, namespace, clusterName)
			}

			By("deleting the Cluster")
			deleteCluster(ctx, namespace, clusterName)
			AddReportEntry("stops before", "no node joins the workload cluster (the guest image runs no kubelet), so the control plane never initialises")
		},
		Entry("without-lb: the bastion answers SSH, the control plane endpoint's floating IP is on the server", "without-lb", checkAPIServerFloatingIP),
		Entry("default: the API server's load balancer carries the control plane endpoint's floating IP", "default", checkAPIServerLoadBalancer),
	)
})

// checkBastion reaches the bastion CAPO made, through the address in the
// OpenStackCluster's status, with the cluster's key pair, and runs hostname.
func checkBastion(ctx SpecContext, namespace, clusterName string, all []servers.Server, machineKey ssh.Signer) {
	GinkgoHelper()
	By("reaching the bastion CAPO made through the cluster's status, with the cluster's key pair")
	var bastion servers.Server
	for _, s := range all {
		if s.Name == clusterName+"-bastion" {
			bastion = s
		}
	}
	hostKey := consoleHostKey(ctx, bastion.ID)
	// CAPO writes the bastion's floating IP into the status some reconciles
	// after the server is ACTIVE.
	Eventually(func(ctx context.Context) (string, error) {
		ip, _, err := unstructured.NestedString(getOpenStackCluster(ctx, namespace, clusterName).Object, "status", "bastion", "floatingIP")
		return ip, err
	}).WithContext(ctx).WithTimeout(timeout("wait-bastion-ssh")).WithPolling(polling("wait-bastion-ssh")).ShouldNot(BeEmpty(), "status.bastion.floatingIP")
	b, err := framework.BastionDialer(ctx, framework.BastionDialerInput{
		Tunnel: suite.DevStack.Tunnel, Reader: proxy.GetClient(), Namespace: namespace, ClusterName: clusterName,
		User: "cirros", Signer: machineKey,
		HostKeyCallback: tunnel.PinnedHostKey(hostKey), HostKeyAlgorithms: tunnel.HostKeyAlgorithms(hostKey),
	}, suite.E2EConfig.GetIntervals("capo", "wait-bastion-ssh")...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(b.Close)
	res, err := b.Run(ctx, "hostname")
	Expect(err).NotTo(HaveOccurred())
	Expect(string(res.Stdout)).To(Equal(clusterName + "-bastion\n"))
}

// checkAPIServerLoadBalancer checks what CAPO's default flavor adds: the API
// server's load balancer octavia made for the tenant is ACTIVE, its VIP is a
// neutron port, and the floating IP CAPO put on that port is the Cluster's
// control plane endpoint.
func checkAPIServerLoadBalancer(ctx SpecContext, namespace, clusterName string) {
	GinkgoHelper()
	By("checking the API server's load balancer and the floating IP on its VIP port")
	c := suite.DevStack.Clients(ctx)
	Expect(c.LoadBalancer).NotTo(BeNil(), "the catalog has a load-balancer service")
	var lbID, fip string
	Eventually(func(g Gomega, ctx context.Context) {
		lb, _, _ := unstructured.NestedMap(getOpenStackCluster(ctx, namespace, clusterName).Object, "status", "apiServerLoadBalancer")
		lbID, _ = lb["id"].(string)
		fip, _ = lb["ip"].(string)
		g.Expect(lbID).NotTo(BeEmpty(), "status.apiServerLoadBalancer.id")
		g.Expect(fip).NotTo(BeEmpty(), "status.apiServerLoadBalancer.ip")
	}).WithContext(ctx).WithTimeout(timeout("wait-cluster")).WithPolling(polling("wait-cluster")).Should(Succeed())
	var lb *loadbalancers.LoadBalancer
	Eventually(func(ctx context.Context) (string, error) {
		var err error
		lb, err = loadbalancers.Get(ctx, c.LoadBalancer, lbID).Extract()
		if err != nil {
			return "", err
		}
		return lb.ProvisioningStatus, nil
	}).WithContext(ctx).WithTimeout(timeout("wait-cluster")).WithPolling(polling("wait-cluster")).Should(Equal("ACTIVE"), "load balancer %s", lbID)
	Expect(lb.VipPortID).NotTo(BeEmpty(), "the VIP is a neutron port")
	_, err := ports.Get(ctx, c.Network, lb.VipPortID).Extract()
	Expect(err).NotTo(HaveOccurred(), "the VIP port %s exists in neutron", lb.VipPortID)
	Expect(floatingIPsAt(ctx, Default, c, fip)).To(ConsistOf(HaveField("PortID", lb.VipPortID)), "floating IP %s is on the VIP port", fip)

	Eventually(func(g Gomega, ctx context.Context) {
		g.Expect(controlPlaneHost(ctx, g, namespace, clusterName)).To(Equal(fip), "the Cluster's spec.controlPlaneEndpoint.host")
	}).WithContext(ctx).WithTimeout(timeout("wait-cluster")).WithPolling(polling("wait-cluster")).Should(Succeed())
}

// controlPlaneHost reads the Cluster's spec.controlPlaneEndpoint.host.
func controlPlaneHost(ctx context.Context, g Gomega, namespace, name string) string {
	cl := &unstructured.Unstructured{}
	cl.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	cl.SetKind("Cluster")
	g.Expect(proxy.GetClient().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cl)).To(Succeed())
	host, _, _ := unstructured.NestedString(cl.Object, "spec", "controlPlaneEndpoint", "host")
	return host
}

// floatingIPsAt lists the floating IPs whose address is addr.
func floatingIPsAt(ctx context.Context, g Gomega, c *devstack.Clients, addr string) []floatingips.FloatingIP {
	pages, err := floatingips.List(c.Network, floatingips.ListOpts{FloatingIP: addr}).AllPages(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	fips, err := floatingips.ExtractFloatingIPs(pages)
	g.Expect(err).NotTo(HaveOccurred())
	return fips
}

// checkAPIServerFloatingIP checks what CAPO's without-lb flavor does for the
// API server: the Cluster's control plane endpoint is a floating IP, and
// CAPO puts it on the first control plane server's port. It waits for that
// association within wait-cluster: deleting the Cluster before it happened
// leaves the floating IP allocated (CAPO v0.14.7 deletes only the floating
// IPs it finds on the server).
func checkAPIServerFloatingIP(ctx SpecContext, namespace, clusterName string) {
	GinkgoHelper()
	By("checking that the control plane endpoint's floating IP is on the control plane server's port")
	c := suite.DevStack.Clients(ctx)
	admin := suite.DevStack.AdminClients(ctx)
	Eventually(func(g Gomega, ctx context.Context) {
		host := controlPlaneHost(ctx, g, namespace, clusterName)
		g.Expect(host).NotTo(BeEmpty(), "the Cluster's spec.controlPlaneEndpoint.host")
		fips := floatingIPsAt(ctx, g, c, host)
		g.Expect(fips).To(HaveLen(1), "floating IP %s", host)
		g.Expect(fips[0].PortID).NotTo(BeEmpty(), "floating IP %s is associated", host)
		port, err := ports.Get(ctx, admin.Network, fips[0].PortID).Extract()
		g.Expect(err).NotTo(HaveOccurred())
		var cp []string
		for _, s := range clusterServers(ctx, admin, clusterName) {
			if strings.HasPrefix(s.Name, clusterName+"-control-plane-") {
				cp = append(cp, s.ID)
			}
		}
		g.Expect(cp).To(ContainElement(port.DeviceID), "floating IP %s is on a control plane server's port (port %s of device %s)", host, port.ID, port.DeviceID)
	}).WithContext(ctx).WithTimeout(timeout("wait-cluster")).WithPolling(polling("wait-cluster")).Should(Succeed())
}

// applyAndWaitForServers applies a flavor and waits for the OpenStackCluster
// to be ready and for its bastion and first control plane server to be
// ACTIVE; it returns the cluster's servers. The Cluster is deleted after the
// spec.
func applyAndWaitForServers(ctx context.Context, flavor, namespace, clusterName string, vars map[string]string) []servers.Server {
	GinkgoHelper()
	// CAPO lists the zones when it reconciles the cluster; the worker's zone
	// has to be there by then.
	framework.WaitForSecondAZ(ctx, framework.WaitForSecondAZInput{DevStack: suite.DevStack}, suite.E2EConfig.GetIntervals("capo", "wait-alt-az")...)
	applyFlavor(ctx, flavor, namespace, vars, true, nil)
	DeferCleanup(deleteCluster, namespace, clusterName)

	By("waiting for the OpenStackCluster to be ready")
	waitForOpenStackCluster(ctx, namespace, clusterName)

	return waitForServers(ctx, clusterName)
}

// waitForServers waits for the cluster's bastion and first control plane
// server to be ACTIVE and returns the cluster's servers.
func waitForServers(ctx context.Context, clusterName string) []servers.Server {
	GinkgoHelper()
	By("waiting for the bastion and the first control plane server")
	admin := suite.DevStack.AdminClients(ctx)
	var all []servers.Server
	Eventually(func(g Gomega, ctx context.Context) {
		if err := mgmt.Err(); err != nil {
			StopTrying("a manager died").Wrap(err).Now()
		}
		all = clusterServers(ctx, admin, clusterName)
		g.Expect(all).To(ContainElement(HaveField("Name", clusterName+"-bastion")), "the bastion")
		g.Expect(all).To(ContainElement(HaveField("Name", HavePrefix(clusterName+"-control-plane-"))), "a control plane server")
		for _, s := range all {
			g.Expect(s.Status).To(Equal("ACTIVE"), "server %s", s.Name)
		}
	}).WithContext(ctx).WithTimeout(timeout("wait-control-plane")).WithPolling(polling("wait-control-plane")).Should(Succeed())
	return all
}

// applyFlavor renders one of CAPO's e2e flavors as its e2e suite does
// (clusterctl's variable processor over the kustomize build), pins it to the
// first failure domain if pin is set, has ORC import the local image, passes
// every object through edit (if any), and creates it.
func applyFlavor(ctx context.Context, flavor, namespace string, vars map[string]string, pin bool, edit func(*unstructured.Unstructured)) {
	GinkgoHelper()
	tmpl, err := os.ReadFile(filepath.Join(capiDir, "templates", flavor+".yaml"))
	Expect(err).NotTo(HaveOccurred(), "CAPO's %s flavor (rendered by hack/capi/build.sh)", flavor)
	if pin {
		tmpl, err = framework.PinToFailureDomain(tmpl, "${OPENSTACK_FAILURE_DOMAIN}")
		Expect(err).NotTo(HaveOccurred(), "Couldn't pin CAPO's %s flavor", flavor)
	}
	out, err := yamlprocessor.NewSimpleProcessor().Process(tmpl, func(name string) (string, error) {
		if v, ok := vars[name]; ok {
			return v, nil
		}
		if v, ok := os.LookupEnv(name); ok {
			return v, nil
		}
		if v, ok := suite.E2EConfig.Variables[name]; ok {
			return v, nil
		}
		if v, ok := notUsedHere[name]; ok {
			return v, nil
		}
		return "", fmt.Errorf("variable %s is not set", name)
	})
	Expect(err).NotTo(HaveOccurred(), "Couldn't process the variables of CAPO's %s flavor", flavor)
	objs := decode(out)
	for _, o := range objs {
		if o.GetNamespace() == "" && o.GetKind() != "Namespace" {
			o.SetNamespace(namespace)
		}
		if o.GroupVersionKind().Group == "openstack.k-orc.cloud" && o.GetKind() == "Image" {
			importImage(o)
		}
		if edit != nil {
			edit(o)
		}
	}
	for _, o := range objs {
		Expect(proxy.GetClient().Create(ctx, o)).To(Succeed(), "Couldn't create %s %s of CAPO's %s flavor", o.GetKind(), o.GetName(), flavor)
	}
}

// importImage turns an ORC Image CAPO's templates download into one that
// imports the image of that name the cloud already has.
func importImage(img *unstructured.Unstructured) {
	GinkgoHelper()
	name, _, _ := unstructured.NestedString(img.Object, "spec", "resource", "name")
	Expect(name).NotTo(BeEmpty(), "ORC Image %s has no spec.resource.name", img.GetName())
	creds, _, _ := unstructured.NestedMap(img.Object, "spec", "cloudCredentialsRef")
	img.Object["spec"] = map[string]interface{}{
		"managementPolicy":    "unmanaged",
		"import":              map[string]interface{}{"filter": map[string]interface{}{"name": name}},
		"cloudCredentialsRef": creds,
	}
}

func decode(y []byte) []*unstructured.Unstructured {
	GinkgoHelper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	var objs []*unstructured.Unstructured
	for {
		o := &unstructured.Unstructured{}
		err := dec.Decode(&o.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		Expect(err).NotTo(HaveOccurred())
		if len(o.Object) > 0 {
			objs = append(objs, o)
		}
	}
}

// createNamespace creates a namespace in the management cluster, deleted
// after the spec.
func createNamespace(ctx context.Context, name string) {
	GinkgoHelper()
	Expect(proxy.GetClient().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(proxy.GetClient().Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
	})
}

// createKeypair creates a keypair for the cluster's machines, deleted after
// the spec, and returns its private key.
func createKeypair(ctx context.Context, name string) ssh.Signer {
	GinkgoHelper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	signer, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	c := suite.DevStack.Clients(ctx)
	_, err = keypairs.Create(ctx, c.Compute, keypairs.CreateOpts{Name: name, PublicKey: string(ssh.MarshalAuthorizedKey(signer.PublicKey()))}).Extract()
	Expect(err).NotTo(HaveOccurred(), "Couldn't create keypair %s", name)
	DeferCleanup(func(ctx SpecContext) {
		Expect(keypairs.Delete(ctx, c.Compute, name, nil).ExtractErr()).To(Succeed(), "Couldn't delete keypair %s", name)
	})
	return signer
}

// consoleHostKey reads a server's SSH host key from its console log, where
// the guest prints it between cloud-init's markers, as cloud-init does.
func consoleHostKey(ctx context.Context, serverID string) ssh.PublicKey {
	GinkgoHelper()
	c := suite.DevStack.Clients(ctx)
	var key ssh.PublicKey
	Eventually(func(ctx context.Context) error {
		out, err := servers.ShowConsoleOutput(ctx, c.Compute, serverID, servers.ShowConsoleOutputOpts{}).Extract()
		if err != nil {
			return err
		}
		_, after, ok := strings.Cut(out, "-----BEGIN SSH HOST KEY KEYS-----\n")
		if !ok {
			return fmt.Errorf("no host keys in the console log yet (%d bytes)", len(out))
		}
		line, _, _ := strings.Cut(after, "\n")
		key, _, _, _, err = ssh.ParseAuthorizedKey([]byte(line))
		return err
	}).WithContext(ctx).WithTimeout(timeout("wait-bastion-ssh")).WithPolling(polling("wait-bastion-ssh")).Should(Succeed(), "server %s's host key on its console", serverID)
	return key
}

var openStackClusterGVK = unstructured.Unstructured{Object: map[string]interface{}{
	"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "OpenStackCluster"}}

func getOpenStackCluster(ctx context.Context, namespace, name string) *unstructured.Unstructured {
	GinkgoHelper()
	o := openStackClusterGVK.DeepCopy()
	Expect(proxy.GetClient().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, o)).To(Succeed())
	return o
}

func getOpenStackMachine(ctx context.Context, namespace, name string) *unstructured.Unstructured {
	GinkgoHelper()
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("infrastructure.cluster.x-k8s.io/v1beta1")
	o.SetKind("OpenStackMachine")
	Expect(proxy.GetClient().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, o)).To(Succeed())
	return o
}

// waitForOpenStackCluster waits until CAPO reports the cluster's
// infrastructure ready, failing early on a manager that died.
func waitForOpenStackCluster(ctx context.Context, namespace, name string) *unstructured.Unstructured {
	GinkgoHelper()
	var osc *unstructured.Unstructured
	Eventually(func(g Gomega, ctx context.Context) {
		if err := mgmt.Err(); err != nil {
			StopTrying("a manager died").Wrap(err).Now()
		}
		osc = openStackClusterGVK.DeepCopy()
		g.Expect(proxy.GetClient().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, osc)).To(Succeed())
		ready, _, _ := unstructured.NestedBool(osc.Object, "status", "ready")
		g.Expect(ready).To(BeTrue(), "OpenStackCluster %s/%s status.ready; conditions: %v", namespace, name, osc.Object["status"])
	}).WithContext(ctx).WithTimeout(timeout("wait-cluster")).WithPolling(polling("wait-cluster")).Should(Succeed())
	return osc
}

// clusterServers lists every project's servers whose names start with the
// cluster's.
func clusterServers(ctx context.Context, admin *devstack.Clients, clusterName string) []servers.Server {
	GinkgoHelper()
	pages, err := servers.List(admin.Compute, servers.ListOpts{AllTenants: true, Name: "^" + clusterName + "-"}).AllPages(ctx)
	Expect(err).NotTo(HaveOccurred())
	all, err := servers.ExtractServers(pages)
	Expect(err).NotTo(HaveOccurred())
	return all
}

// deleteCluster deletes the Cluster and waits until Cluster API and CAPO
// removed it and everything they made.
func deleteCluster(ctx SpecContext, namespace, name string) {
	c := &unstructured.Unstructured{}
	c.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	c.SetKind("Cluster")
	c.SetNamespace(namespace)
	c.SetName(name)
	Expect(client.IgnoreNotFound(proxy.GetClient().Delete(ctx, c))).To(Succeed())
	Eventually(func(ctx context.Context) error {
		if err := mgmt.Err(); err != nil {
			return StopTrying("a manager died").Wrap(err)
		}
		err := proxy.GetClient().Get(ctx, client.ObjectKeyFromObject(c), c.DeepCopy())
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("Cluster %s/%s still exists", namespace, name)
	}).WithContext(ctx).WithTimeout(timeout("wait-delete-cluster")).WithPolling(polling("wait-delete-cluster")).Should(Succeed())
}
