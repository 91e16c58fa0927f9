package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/tunnel"
)

// ProviderLabel is the label clusterctl puts on every object of the
// providers it installs (cluster-api, kubeadm, openstack, and ORC, which
// CAPO's e2e configuration installs as a runtime extension).
const ProviderLabel = "cluster.x-k8s.io/provider"

// DefaultClusterNoProxy are the addresses a management cluster's
// controllers reach without the proxy, besides loopback: kind's service
// network (10.96.0.0/16, inside 10.96.0.0/12, where the kubernetes service
// is) and pod network (10.244.0.0/16), and the cluster's own DNS names.
var DefaultClusterNoProxy = []string{"10.96.0.0/12", "10.244.0.0/16", ".svc", ".cluster.local"}

// DefaultProxyProvidersTimeout bounds ProxyProviders when it is given no
// intervals.
const DefaultProxyProvidersTimeout = DefaultBastionTimeout

// ProxyProvidersInput is the input of ProxyProviders.
type ProxyProvidersInput struct {
	// DevStack's tunnel serves the proxy, in this process, which must
	// outlive the management cluster's use of OpenStack (Ginkgo's process 1,
	// which also runs the after-suite node that deletes the clusters).
	// Required.
	DevStack *DevStack
	// Client is a client of the management cluster, e.g.
	// ClusterProxy.GetClient(). Required.
	Client client.Client
	// ListenAddress is where the proxy listens, host:port (port 0: a free
	// one). Default: this host's address on its route to the management
	// cluster's first node, port 0; for kind, that is the gateway of the
	// container network its nodes are on, which its pods reach. The proxy
	// has no authentication: never listen where other hosts reach it.
	ListenAddress string
	// NoProxy is appended to NO_PROXY after loopback (default
	// DefaultClusterNoProxy): what the controllers reach directly, at least
	// the cluster's service network, where they reach their API server.
	NoProxy []string
	// Selector picks the Deployments whose containers get the proxy
	// environment. Default: every Deployment with the label ProviderLabel.
	Selector labels.Selector
}

// ProxyProviders gives a management cluster's providers the tunnel, as
// sshuttle gave the whole machine: it serves the tunnel's proxy (HTTP and
// HTTP CONNECT, tunnel.Serve) where the cluster's pods reach this host, sets
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY (tunnel.Env, with NoProxy) on every
// container of the selected Deployments and waits until each has rolled
// out, within intervals, polling as they say (use
// e2eConfig.GetIntervals("bootstrap", "wait-controllers"); none:
// DefaultProxyProvidersTimeout). The providers' controllers then reach
// OpenStack's APIs, and the workload clusters' API servers on floating IPs,
// through the tunnel. A Deployment that does not roll out fails the spec
// with what it showed last. The proxy closes in a DeferCleanup: called in
// SynchronizedBeforeSuite, after the after-suite nodes. It returns the
// proxy's address.
func ProxyProviders(ctx context.Context, input ProxyProvidersInput, intervals ...interface{}) string {
	gomega.Expect(input.DevStack).NotTo(gomega.BeNil(), "Invalid argument. input.DevStack can't be nil when calling ProxyProviders")
	gomega.Expect(input.DevStack.Tunnel).NotTo(gomega.BeNil(), "Invalid argument. input.DevStack has no tunnel when calling ProxyProviders: attach with UseDevStack or UseSetupData, and do not close it first")
	gomega.Expect(input.Client).NotTo(gomega.BeNil(), "Invalid argument. input.Client can't be nil when calling ProxyProviders")
	iv := devstack.Intervals{Timeout: DefaultProxyProvidersTimeout}
	if len(intervals) > 0 {
		var err error
		iv, err = ParseIntervals(intervals...)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Invalid intervals for ProxyProviders")
	}
	addr := input.ListenAddress
	if addr == "" {
		host, err := addressTowardsNodes(ctx, input.Client)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't find where the management cluster's pods reach this host; set ListenAddress")
		addr = net.JoinHostPort(host, "0")
	}
	l, err := net.Listen("tcp", addr)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Couldn't listen on %s for the management cluster's proxy", addr)
	served := make(chan error, 1)
	go func() { served <- input.DevStack.Tunnel.Serve(l) }()
	ginkgo.DeferCleanup(func() error {
		_ = l.Close()
		if err := <-served; err != nil && !errors.Is(err, tunnel.ErrClosed) && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("management cluster proxy on %s: %w", l.Addr(), err)
		}
		return nil
	})
	proxy := l.Addr().String()
	noProxy := input.NoProxy
	if noProxy == nil {
		noProxy = DefaultClusterNoProxy
	}
	env := ProxyEnv(input.DevStack.Tunnel, proxy, noProxy...)

	selector := input.Selector
	if selector == nil {
		req, err := labels.NewRequirement(ProviderLabel, selection.Exists, nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		selector = labels.NewSelector().Add(*req)
	}
	var pending map[client.ObjectKey]bool
	err = devstack.Poll(ctx, ginkgo.GinkgoLogr, "the providers' Deployments to roll out with the proxy environment", iv, func(ctx context.Context) (string, bool, error) {
		var list appsv1.DeploymentList
		if err := input.Client.List(ctx, &list, client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return "", false, fmt.Errorf("listing Deployments (%s): %w", selector, err)
		}
		if len(list.Items) == 0 {
			return "", false, devstack.Permanent(fmt.Errorf("no Deployment matches %s: install the providers first", selector))
		}
		if pending == nil {
			pending = map[client.ObjectKey]bool{}
			for i := range list.Items {
				pending[client.ObjectKeyFromObject(&list.Items[i])] = true
			}
		}
		var waiting []string
		for i := range list.Items {
			d := &list.Items[i]
			key := client.ObjectKeyFromObject(d)
			if !pending[key] {
				continue
			}
			if setEnv(&d.Spec.Template.Spec, env) {
				if err := input.Client.Update(ctx, d); err != nil {
					if apierrors.IsConflict(err) {
						waiting = append(waiting, key.String()+": changed meanwhile, again")
						continue
					}
					return "", false, fmt.Errorf("setting the proxy environment of Deployment %s: %w", key, err)
				}
			}
			if done, seen := rolledOut(d); !done {
				waiting = append(waiting, key.String()+": "+seen)
				continue
			}
			delete(pending, key)
		}
		if len(waiting) > 0 {
			return strings.Join(waiting, "; "), false, nil
		}
		return "every one rolled out", true, nil
	})
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "The providers' Deployments did not roll out with the proxy environment (proxy %s)", proxy)
	return proxy
}

// ProxyEnv is t.Env(proxyAddr) with noProxy appended to NO_PROXY and
// no_proxy: the environment of a process outside this host's loopback (a
// pod) that reaches the tunnel's proxy at proxyAddr.
func ProxyEnv(t *tunnel.Tunnel, proxyAddr string, noProxy ...string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, kv := range t.Env(proxyAddr) {
		name, value, _ := strings.Cut(kv, "=")
		if (name == "NO_PROXY" || name == "no_proxy") && len(noProxy) > 0 {
			value += "," + strings.Join(noProxy, ",")
		}
		env = append(env, corev1.EnvVar{Name: name, Value: value})
	}
	return env
}

// setEnv sets env on every container of spec, replacing variables of the
// same names, and reports whether anything changed.
func setEnv(spec *corev1.PodSpec, env []corev1.EnvVar) bool {
	changed := false
	for i := range spec.Containers {
		c := &spec.Containers[i]
	next:
		for _, v := range env {
			for j := range c.Env {
				if c.Env[j].Name == v.Name {
					if c.Env[j].Value != v.Value || c.Env[j].ValueFrom != nil {
						c.Env[j] = v
						changed = true
					}
					continue next
				}
			}
			c.Env = append(c.Env, v)
			changed = true
		}
	}
	return changed
}

// rolledOut reports whether a Deployment has rolled its template out, as
// kubectl rollout status decides it, and what it shows otherwise.
func rolledOut(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, fmt.Sprintf("generation %d not observed yet (observed %d)", d.Generation, s.ObservedGeneration)
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas still running", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return true, "rolled out"
}

// addressTowardsNodes returns this host's address on its route to the
// first node of the cluster that has an InternalIP. Connecting a UDP socket
// sends nothing; it only picks the route and so the source address.
func addressTowardsNodes(ctx context.Context, c client.Client) (string, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return "", fmt.Errorf("listing the management cluster's nodes: %w", err)
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			ip := net.ParseIP(a.Address)
			if ip == nil {
				continue
			}
			conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: ip, Port: 9})
			if err != nil {
				return "", fmt.Errorf("no route from this host to node %s (%s): %w", n.Name, a.Address, err)
			}
			local := conn.LocalAddr().(*net.UDPAddr).IP.String()
			_ = conn.Close()
			return local, nil
		}
	}
	return "", fmt.Errorf("none of the management cluster's %d nodes has an InternalIP address", len(nodes.Items))
}
