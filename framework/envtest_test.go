package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stackgate/stackgate/internal/buildscript"
)

// The CAPO release whose CRDs and templates the pinning is checked against
// (the project's CAPO pin), and the ORC release its go.mod requires (its
// templates create ORC Images). The modules are downloaded into the module
// cache, not required by go.mod; the sums pin their content (go mod
// download's h1: hash).
const (
	capoModule  = "sigs.k8s.io/cluster-api-provider-openstack"
	capoVersion = "v0.14.7"
	capoSum     = "h1:paxhYMaCVkoOBBL3IL02Su2x+/ocXOxqNgZ0AyG2KSI="
	orcModule   = "github.com/k-orc/openstack-resource-controller/v2"
	orcVersion  = "v2.4.0"
	orcSum      = "h1:5sRLIe24eIwICl/210LuH3BgeF3LAMq+MI0qyCaZ7MI="
)

// Bounds for the one-time steps of the envtest set-up.
const (
	envtestBuildTimeout = 45 * time.Minute // cold build of kube-apiserver and etcd
	moduleLookupTimeout = 5 * time.Minute
	controlPlaneTimeout = 2 * time.Minute
)

// kube is the envtest API server shared by the specs of one process.
type kube struct {
	env    *envtest.Environment
	config *rest.Config
	client client.Client
}

var (
	envtestOnce sync.Once
	envtestKube *kube
	envtestErr  error
)

// startEnvtestContext starts (once per process) a kube-apiserver and etcd
// loaded with the Cluster API and CAPO CRDs and returns a client for it,
// bounded by ctx (e.g. a SpecContext). The binaries come from
// KUBEBUILDER_ASSETS or, when it is unset, from hack/envtest/build.sh,
// which builds and caches them.
func startEnvtestContext(ctx context.Context) *kube {
	GinkgoHelper()
	envtestOnce.Do(func() { envtestKube, envtestErr = newKube(ctx) })
	Expect(envtestErr).NotTo(HaveOccurred(), "Couldn't start the envtest kube-apiserver")
	return envtestKube
}

func stopEnvtest() {
	if envtestKube != nil {
		Expect(envtestKube.env.Stop()).To(Succeed(), "Couldn't stop the envtest kube-apiserver")
		envtestKube = nil
	}
}

func newKube(ctx context.Context) (*kube, error) {
	crds, err := crdDirectories(ctx)
	if err != nil {
		return nil, err
	}
	return newKubeWithCRDs(ctx, crds)
}

// startEnvtestWithCRDs starts a kube-apiserver of its own, loaded with the
// CRDs in paths (files or directories), and stops it when the spec or
// container ends; for specs that need CRDs the shared one cannot hold.
func startEnvtestWithCRDs(ctx context.Context, paths ...string) *kube {
	GinkgoHelper()
	k, err := newKubeWithCRDs(ctx, paths)
	Expect(err).NotTo(HaveOccurred(), "Couldn't start an envtest kube-apiserver with the CRDs in %v", paths)
	DeferCleanup(func() {
		Expect(k.env.Stop()).To(Succeed(), "Couldn't stop the envtest kube-apiserver")
	})
	return k
}

func newKubeWithCRDs(ctx context.Context, crds []string) (*kube, error) {
	assets, err := envtestAssets(ctx)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        crds,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: controlPlaneTimeout,
		ControlPlaneStopTimeout:  controlPlaneTimeout,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest with binaries from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("envtest client: %w", err)
	}
	return &kube{env: env, config: cfg, client: c}, nil
}

// envtestAssets returns the directory holding kube-apiserver and etcd.
func envtestAssets(ctx context.Context) (string, error) {
	return buildscript.Dir(ctx, "KUBEBUILDER_ASSETS", filepath.Join("..", "hack", "envtest", "build.sh"), "envtest",
		envtestBuildTimeout, GinkgoWriter, "kube-apiserver", "etcd")
}

// crdDirectories finds the CRDs of Cluster API (the version in go.mod) and of
// CAPO (downloaded into the module cache) without hard-coded paths.
func crdDirectories(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, moduleLookupTimeout)
	defer cancel()

	var capi struct{ Dir, Version string }
	if err := goJSON(ctx, "", nil, &capi, "list", "-m", "-json", "sigs.k8s.io/cluster-api"); err != nil {
		return nil, err
	}
	if capi.Dir == "" {
		return nil, fmt.Errorf("sigs.k8s.io/cluster-api %s is not in the module cache; run `go mod download sigs.k8s.io/cluster-api`", capi.Version)
	}

	capo, err := downloadModule(ctx, capoModule, capoVersion, capoSum)
	if err != nil {
		return nil, err
	}
	orc, err := downloadModule(ctx, orcModule, orcVersion, orcSum)
	if err != nil {
		return nil, err
	}
	// The core CRDs are under core/ from Cluster API v1.13, at the top
	// before (v1.12, the release CAPO v0.14 uses).
	core := filepath.Join(capi.Dir, "core", "config", "crd", "bases")
	if _, err := os.Stat(core); errors.Is(err, fs.ErrNotExist) {
		core = filepath.Join(capi.Dir, "config", "crd", "bases")
	}
	return []string{
		core,
		filepath.Join(capi.Dir, "controlplane", "kubeadm", "config", "crd", "bases"),
		filepath.Join(capi.Dir, "bootstrap", "kubeadm", "config", "crd", "bases"),
		filepath.Join(capo, "config", "crd", "bases"),
		filepath.Join(orc, "config", "crd", "bases"),
	}, nil
}

// downloadModule returns the directory of a module version in the module
// cache, downloading it when needed (go mod download -json, outside the main
// module so go.mod and go.sum stay untouched), and checks its content against
// sum. The checksum database is not asked (GONOSUMDB): sum pins the content.
func downloadModule(ctx context.Context, path, version, sum string) (string, error) {
	var mod struct{ Dir, Sum, Error string }
	env := []string{"GONOSUMDB=" + path}
	if err := goJSON(ctx, os.TempDir(), env, &mod, "mod", "download", "-json", path+"@"+version); err != nil && mod.Error == "" {
		return "", fmt.Errorf("%w; the module proxy ($GOPROXY) must serve %s@%s", err, path, version)
	}
	if mod.Error != "" {
		return "", fmt.Errorf("download %s@%s: %s; the module proxy ($GOPROXY) must serve it", path, version, mod.Error)
	}
	if mod.Sum != sum {
		return "", fmt.Errorf("%s@%s has checksum %s, want %s", path, version, mod.Sum, sum)
	}
	return mod.Dir, nil
}

// goJSON runs the go command and decodes its JSON output into v.
func goJSON(ctx context.Context, dir string, env []string, v interface{}, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, v); err != nil {
			return fmt.Errorf("go %s: decode output: %w", strings.Join(args, " "), err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), runErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}
