package mgmtcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	capiframework "sigs.k8s.io/cluster-api/test/framework"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultStartTimeout bounds Start when Config.StartTimeout is zero: the
// API server, the CRDs and every manager's readiness.
const DefaultStartTimeout = 3 * time.Minute

// DefaultStopTimeout is how long Stop waits for a manager to exit after
// SIGTERM before it kills it.
const DefaultStopTimeout = 10 * time.Second

// Config describes a management cluster.
type Config struct {
	// Dir is the managers' cache directory made by hack/capi/build.sh (its
	// providers.json, bin/ and components/). Default: $STACKGATE_CAPI_DIR.
	Dir string
	// KubeAPIServerAssets is the directory of kube-apiserver and etcd.
	// Default: $KUBEBUILDER_ASSETS, as envtest reads it.
	KubeAPIServerAssets string
	// ProxyEnv is the managers' proxy environment, tunnel.Env(proxyAddr):
	// their OpenStack traffic goes through the tunnel's proxy port. Empty
	// means the managers reach OpenStack directly (an environment whose
	// endpoints this machine routes).
	ProxyEnv []string
	// ExtraEnv is added to every manager's environment.
	ExtraEnv []string
	// Providers selects the managers to run by name (core,
	// bootstrap-kubeadm, control-plane-kubeadm, infrastructure-openstack,
	// orc). Empty means all that Dir has.
	Providers []string
	// FeatureGates are passed to the Cluster API managers (and CAPO) that
	// know them. Default: DefaultFeatureGates.
	FeatureGates map[string][]string
	// LogDir receives one <provider>.log per manager. Default: a directory
	// under the temporary directory, removed by Stop.
	LogDir string
	// StartTimeout bounds Start. Default: DefaultStartTimeout.
	StartTimeout time.Duration
}

// DefaultFeatureGates are the feature gates CAPO's e2e configuration turns
// on (CLUSTER_TOPOLOGY, EXP_KUBEADM_BOOTSTRAP_FORMAT_IGNITION), per manager.
var DefaultFeatureGates = map[string][]string{
	"core":                  {"ClusterTopology=true"},
	"bootstrap-kubeadm":     {"KubeadmBootstrapFormatIgnition=true"},
	"control-plane-kubeadm": {"ClusterTopology=true", "KubeadmBootstrapFormatIgnition=true"},
}

// Provider is one provider the cache directory has, as providers.json
// records it.
type Provider struct {
	// Name is the provider's name (core, infrastructure-openstack, ...).
	Name string `json:"name"`
	// Module and Version are the Go module the manager was built from.
	Module  string `json:"module"`
	Version string `json:"version"`
	// Binary and Components are relative to the cache directory.
	Binary     string `json:"binary"`
	Components string `json:"components"`
	// ModuleDir is the module's directory in the Go module cache.
	ModuleDir string `json:"moduleDir"`
	// Flags is the manager's command-line style: FlagsClusterAPI or
	// FlagsKubebuilder.
	Flags string `json:"flags"`
	// Clusterctl names the provider in clusterctl's inventory; nil for
	// what clusterctl does not install (ORC).
	Clusterctl *ClusterctlProvider `json:"clusterctl,omitempty"`
}

// ClusterctlProvider is a provider as clusterctl's inventory records it.
type ClusterctlProvider struct {
	// Name and Type are clusterctl's provider name and type, e.g.
	// "openstack" and "InfrastructureProvider".
	Name string `json:"name"`
	Type string `json:"type"`
	// Namespace is where clusterctl would have installed it.
	Namespace string `json:"namespace"`
}

// The command-line styles of managers.
const (
	// FlagsClusterAPI are Cluster API's manager flags (--health-addr,
	// --diagnostics-address, --webhook-port, ...), which CAPO shares.
	FlagsClusterAPI = "cluster-api"
	// FlagsKubebuilder are kubebuilder's scaffolded flags
	// (--health-probe-bind-address, --metrics-bind-address), without
	// webhooks (ORC).
	FlagsKubebuilder = "kubebuilder"
)

// ReadProviders reads what hack/capi/build.sh built into dir.
func ReadProviders(dir string) ([]Provider, error) {
	if dir == "" {
		return nil, errors.New("management cluster: no managers' directory: set STACKGATE_CAPI_DIR=\"$(hack/capi/build.sh)\" or Config.Dir")
	}
	b, err := os.ReadFile(filepath.Join(dir, "providers.json"))
	if err != nil {
		return nil, fmt.Errorf("management cluster: %w (build the managers with hack/capi/build.sh and pass the directory it prints)", err)
	}
	var ps []Provider
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("management cluster: %s: %w", filepath.Join(dir, "providers.json"), err)
	}
	return ps, nil
}

// Cluster is a running management cluster.
type Cluster struct {
	env        *envtest.Environment
	config     *rest.Config
	kubeconfig string
	client     client.Client
	tmp        string
	logDir     string
	providers  []Provider
	managers   []*manager

	stopOnce sync.Once
	stopErr  error
}

// Start starts kube-apiserver and etcd, installs every provider's CRDs and
// webhook configurations, starts the managers and waits until each one is
// ready (its /readyz answers 200). On any error, everything started is
// stopped again.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Dir == "" {
		cfg.Dir = os.Getenv("STACKGATE_CAPI_DIR")
	}
	if cfg.KubeAPIServerAssets == "" {
		cfg.KubeAPIServerAssets = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if cfg.KubeAPIServerAssets == "" {
		return nil, errors.New("management cluster: no kube-apiserver: set KUBEBUILDER_ASSETS=\"$(hack/envtest/build.sh)\" or Config.KubeAPIServerAssets")
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.FeatureGates == nil {
		cfg.FeatureGates = DefaultFeatureGates
	}
	all, err := ReadProviders(cfg.Dir)
	if err != nil {
		return nil, err
	}
	providers, err := selectProviders(all, cfg.Providers)
	if err != nil {
		return nil, err
	}
	for _, p := range providers {
		if p.Flags != FlagsClusterAPI && p.Flags != FlagsKubebuilder {
			return nil, fmt.Errorf("management cluster: provider %s in %s: flags %q: want %q or %q; rebuild with hack/capi/build.sh",
				p.Name, filepath.Join(cfg.Dir, "providers.json"), p.Flags, FlagsClusterAPI, FlagsKubebuilder)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	c := &Cluster{providers: providers}
	defer func() {
		if err != nil {
			_ = c.Stop()
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
			}
		}
	}()
	if c.tmp, err = os.MkdirTemp("", "stackgate-mgmt-"); err != nil {
		return nil, fmt.Errorf("management cluster: %w", err)
	}
	c.logDir = cfg.LogDir
	if c.logDir == "" {
		c.logDir = filepath.Join(c.tmp, "logs")
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("management cluster: log directory: %w", err)
	}

	ca, err := newServingCA(7 * 24 * time.Hour)
	if err != nil {
		return nil, fmt.Errorf("management cluster: %w", err)
	}
	certDir := filepath.Join(c.tmp, "serving-certs")
	if err := ca.writeServing(certDir); err != nil {
		return nil, fmt.Errorf("management cluster: %w", err)
	}

	// Ports first: the CRDs' conversion webhooks name them.
	ports := map[string]managerPorts{}
	var crds []*apiextensionsv1.CustomResourceDefinition
	var webhooks []client.Object
	for _, p := range providers {
		pp, err := freePorts()
		if err != nil {
			return nil, fmt.Errorf("management cluster: ports for %s: %w", p.Name, err)
		}
		ports[p.Name] = pp
		y, err := os.ReadFile(filepath.Join(cfg.Dir, p.Components))
		if err != nil {
			return nil, fmt.Errorf("management cluster: %s's components: %w", p.Name, err)
		}
		comp, err := parseComponents(y)
		if err != nil {
			return nil, fmt.Errorf("management cluster: %s's components (%s): %w", p.Name, p.Components, err)
		}
		if err := comp.rewrite(p.Name, loopback(pp.Webhook), ca.CertPEM); err != nil {
			return nil, fmt.Errorf("management cluster: %s's components: %w", p.Name, err)
		}
		for _, u := range comp.CRDs {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
				return nil, fmt.Errorf("management cluster: %s's CRD %s: %w", p.Name, u.GetName(), err)
			}
			crds = append(crds, crd)
		}
		for _, w := range comp.Webhooks {
			webhooks = append(webhooks, w)
		}
	}

	inv, err := os.ReadFile(filepath.Join(cfg.Dir, "components", "clusterctl-inventory.yaml"))
	if err != nil {
		return nil, fmt.Errorf("management cluster: clusterctl's inventory CRD: %w (rebuild with hack/capi/build.sh)", err)
	}
	invComp, err := parseComponents(inv)
	if err != nil {
		return nil, fmt.Errorf("management cluster: clusterctl's inventory CRD: %w", err)
	}
	for _, u := range invComp.CRDs {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
			return nil, fmt.Errorf("management cluster: CRD %s: %w", u.GetName(), err)
		}
		crds = append(crds, crd)
	}

	// The CRDs are created after the start, not through envtest's
	// CRDInstallOptions: envtest drops the conversion webhook of every CRD
	// whose types its scheme does not know.
	c.env = &envtest.Environment{BinaryAssetsDirectory: cfg.KubeAPIServerAssets}
	if c.config, err = startEnvtest(ctx, c.env); err != nil {
		return nil, fmt.Errorf("management cluster: kube-apiserver: %w", err)
	}
	if err := envtest.CreateCRDs(c.config, crds); err != nil {
		return nil, fmt.Errorf("management cluster: CRDs: %w", err)
	}
	deadline, _ := ctx.Deadline()
	if err := envtest.WaitForCRDs(c.config, crds, envtest.CRDInstallOptions{MaxTime: time.Until(deadline), PollInterval: 100 * time.Millisecond}); err != nil {
		return nil, fmt.Errorf("management cluster: waiting for the CRDs to be established: %w", err)
	}
	if c.kubeconfig, err = c.writeKubeconfig(); err != nil {
		return nil, fmt.Errorf("management cluster: kubeconfig: %w", err)
	}
	if c.client, err = client.New(c.config, client.Options{}); err != nil {
		return nil, fmt.Errorf("management cluster: client: %w", err)
	}
	for _, w := range webhooks {
		if err := c.client.Create(ctx, w); err != nil {
			return nil, fmt.Errorf("management cluster: create %s %s: %w", w.GetObjectKind().GroupVersionKind().Kind, w.GetName(), err)
		}
	}

	if err := c.recordInventory(ctx); err != nil {
		return nil, err
	}

	env := managerEnv(os.Environ(), c.kubeconfig, cfg.ProxyEnv, cfg.ExtraEnv)
	for _, p := range providers {
		m, err := startManager(p, filepath.Join(cfg.Dir, p.Binary), managerArgs(p.Flags, ports[p.Name], certDir, cfg.FeatureGates[p.Name]),
			env, filepath.Join(c.logDir, p.Name+".log"), ports[p.Name])
		if err != nil {
			return nil, fmt.Errorf("management cluster: %w", err)
		}
		c.managers = append(c.managers, m)
	}
	for _, m := range c.managers {
		if err := c.waitReady(ctx, m); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// manifestLabel is clusterctl's name for the provider's objects
// (clusterctl's ManifestLabel): cluster-api, bootstrap-kubeadm,
// infrastructure-openstack, ...
func (p *ClusterctlProvider) manifestLabel() string {
	switch p.Type {
	case "CoreProvider":
		return p.Name
	case "BootstrapProvider":
		return "bootstrap-" + p.Name
	case "ControlPlaneProvider":
		return "control-plane-" + p.Name
	case "InfrastructureProvider":
		return "infrastructure-" + p.Name
	case "IPAMProvider":
		return "ipam-" + p.Name
	case "RuntimeExtensionProvider":
		return "runtime-extension-" + p.Name
	case "AddonProvider":
		return "addon-" + p.Name
	}
	return p.Name
}

// recordInventory records the providers in clusterctl's inventory, as
// clusterctl init does, so clusterctl's library finds them (the default
// infrastructure provider and its version for ConfigCluster, describe,
// upgrade plans).
func (c *Cluster) recordInventory(ctx context.Context) error {
	for _, p := range c.providers {
		if p.Clusterctl == nil {
			continue
		}
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(p.Clusterctl.Namespace)
		if err := c.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("management cluster: namespace %s: %w", p.Clusterctl.Namespace, err)
		}
		inv := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion":   "clusterctl.cluster.x-k8s.io/v1alpha3",
			"kind":         "Provider",
			"providerName": p.Clusterctl.Name,
			"type":         p.Clusterctl.Type,
			"version":      p.Version,
		}}
		label := p.Clusterctl.manifestLabel()
		inv.SetNamespace(p.Clusterctl.Namespace)
		inv.SetName(label)
		inv.SetLabels(map[string]string{"clusterctl.cluster.x-k8s.io": "", "cluster.x-k8s.io/provider": label})
		if err := c.client.Create(ctx, inv); err != nil {
			return fmt.Errorf("management cluster: clusterctl inventory for %s: %w", p.Name, err)
		}
	}
	return nil
}

// startEnvtest starts kube-apiserver and etcd, returning when ctx ends even
// if envtest does not.
func startEnvtest(ctx context.Context, env *envtest.Environment) (*rest.Config, error) {
	type result struct {
		cfg *rest.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := env.Start()
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, r.err
	case <-ctx.Done():
		// envtest's own bounds end the start; Stop then removes what it made.
		r := <-done
		if r.err == nil {
			_ = env.Stop()
		}
		return nil, fmt.Errorf("waiting for kube-apiserver: %w", context.Cause(ctx))
	}
}

func (c *Cluster) writeKubeconfig() (string, error) {
	user, err := c.env.AddUser(envtest.User{Name: "stackgate-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.tmp, "kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// waitReady polls the manager's readiness endpoint until it answers 200,
// the manager exits or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, m *manager) error {
	url := "http://" + loopback(m.ports.Health) + "/readyz"
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var last string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := m.exitErr(); err != nil {
			return false, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err == nil {
		return nil
	}
	if exit := m.exitErr(); exit != nil {
		return fmt.Errorf("management cluster: %w", exit)
	}
	return fmt.Errorf("management cluster: waiting for %s to be ready (%s): last answer %q: %w; its log %s ends:\n%s",
		m.provider.Name, url, last, context.Cause(ctx), m.logPath, m.tail(20))
}

// Kubeconfig is the path of a kubeconfig for the cluster's admin.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig is the admin's REST configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// Client is a controller-runtime client for the cluster's admin, with the
// client-go scheme only; ClusterProxy gives one with a scheme of choice.
func (c *Cluster) Client() client.Client { return c.client }

// Providers are the providers whose managers run.
func (c *Cluster) Providers() []Provider { return append([]Provider(nil), c.providers...) }

// LogDir is where the managers' logs are written.
func (c *Cluster) LogDir() string { return c.logDir }

// ClusterProxy returns the Cluster API test framework's ClusterProxy for
// this cluster, so the framework's helpers (ApplyClusterTemplateAndWait,
// DeleteAllClustersAndWait, ...) and a provider's specs use it as they use
// a kind cluster. The scheme must know the types the suite reads (Cluster
// API's, the provider's).
func (c *Cluster) ClusterProxy(name string, scheme *runtime.Scheme, options ...capiframework.Option) capiframework.ClusterProxy {
	return capiframework.NewClusterProxy(name, c.kubeconfig, scheme, options...)
}

// Err reports a manager that exited while the cluster runs: its name, how
// it exited and the last lines of its log. It is nil while all run.
func (c *Cluster) Err() error {
	var errs []error
	for _, m := range c.managers {
		if err := m.exitErr(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop stops every manager (SIGTERM, then SIGKILL after
// DefaultStopTimeout), then kube-apiserver and etcd, and removes the
// temporary directory (the logs too, unless Config.LogDir named another).
// It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		var wg sync.WaitGroup
		for _, m := range c.managers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.stop(DefaultStopTimeout)
			}()
		}
		wg.Wait()
		if c.env != nil && c.config != nil {
			if err := c.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop kube-apiserver: %w", err))
			}
		}
		if c.tmp != "" {
			if err := os.RemoveAll(c.tmp); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

func selectProviders(all []Provider, names []string) ([]Provider, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Provider
	for _, n := range names {
		found := false
		for _, p := range all {
			if p.Name == n {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			var known []string
			for _, p := range all {
				known = append(known, p.Name)
			}
			return nil, fmt.Errorf("management cluster: Providers: no provider %q was built; built: %s", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// managerPorts are one manager's loopback ports.
type managerPorts struct {
	Webhook, Health, Metrics int
}

// freePorts picks three free loopback ports. A port can be taken between
// this pick and the manager's listen; the manager then exits naming it, and
// Start fails with its log.
func freePorts() (managerPorts, error) {
	var ports [3]int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return managerPorts{}, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return managerPorts{Webhook: ports[0], Health: ports[1], Metrics: ports[2]}, nil
}
