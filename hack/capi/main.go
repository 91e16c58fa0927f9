// Command capi builds the Cluster API management cluster's managers (Cluster
// API core, kubeadm bootstrap, kubeadm control plane, CAPO and ORC) at pinned
// versions from the Go module proxy, and renders each provider's components
// (CRDs and webhook configurations, through its own kustomization) with
// kustomize's API. The result is one cache directory:
//
//	<dir>/bin/<provider>                 manager binaries
//	<dir>/components/<provider>.yaml     kustomize build of the provider's config/default
//	<dir>/components/clusterctl-inventory.yaml  clusterctl's Provider CRD
//	<dir>/templates/<flavor>.yaml        CAPO's test/e2e/data/kustomize flavors, built as its Makefile does
//	<dir>/providers.json                 what was built: names, modules, versions, flags
//
// It prints the directory. hack/capi/build.sh calls it when the cache is cold
// and prints the directory directly when it is warm.
//
// This module is separate from stackgate's: stackgate's go.mod never
// requires these providers (CAPO imports stackgate; a requirement back would
// make a module cycle).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// module is one Go module downloaded from the proxy, its content pinned by
// the h1: hash go mod download reports.
type module struct {
	Path, Version, Sum string
}

// provider is one manager: where its main package and kustomization live in
// its module.
type provider struct {
	Name   string // cache and process name: core, bootstrap-kubeadm, ...
	Module module
	// Nested modules copied into the module's tree before building, at the
	// relative directory given (Cluster API's ./api, which its go.mod replaces
	// but its module zip lacks).
	Nested map[string]module
	Main   string // main package, relative to the module root
	Config string // kustomization of the provider's components
	// VersionLDFlags sets the binary's reported version.
	VersionLDFlags []string
	// Flags names the manager's command-line style: "cluster-api" (Cluster
	// API's manager flags, shared by CAPO) or "kubebuilder" (ORC).
	Flags string
	// Clusterctl is the provider as clusterctl's inventory records it
	// (what `clusterctl init` would install); nil for what clusterctl does
	// not install (ORC).
	Clusterctl *Clusterctl
}

// Clusterctl names a provider in clusterctl's inventory.
type Clusterctl struct {
	// Name and Type are clusterctl's provider name and type
	// ("openstack", "InfrastructureProvider").
	Name string `json:"name"`
	Type string `json:"type"`
	// Namespace is where clusterctl would install it.
	Namespace string `json:"namespace"`
}

var (
	clusterAPI    = module{"sigs.k8s.io/cluster-api", "v1.14.2", "h1:o3GFNaeNFAOEEMpDPfhCK+2CjmV6gtQ8yLEcUwCg7bA="}
	clusterAPIAPI = module{"sigs.k8s.io/cluster-api/api", "v1.14.2", "h1:B0XWZGFrb4+R1pH2nApdR9d4tcQGIhpEquRxxf36fHg="}
	capo          = module{"sigs.k8s.io/cluster-api-provider-openstack", "v0.14.7", "h1:paxhYMaCVkoOBBL3IL02Su2x+/ocXOxqNgZ0AyG2KSI="}
	orc           = module{"github.com/k-orc/openstack-resource-controller/v2", "v2.4.0", "h1:5sRLIe24eIwICl/210LuH3BgeF3LAMq+MI0qyCaZ7MI="}
)

func capiVersion(pkg string, m module) []string {
	return []string{"-X", pkg + ".gitVersion=" + m.Version, "-X", pkg + ".gitTreeState=clean"}
}

var providers = []provider{
	{Name: "core", Module: clusterAPI, Nested: map[string]module{"api": clusterAPIAPI},
		Main: "./core", Config: "core/config/default", Flags: "cluster-api", Clusterctl: &Clusterctl{"cluster-api", "CoreProvider", "capi-system"}, VersionLDFlags: capiVersion("sigs.k8s.io/cluster-api/version", clusterAPI)},
	{Name: "bootstrap-kubeadm", Module: clusterAPI, Nested: map[string]module{"api": clusterAPIAPI},
		Main: "./bootstrap/kubeadm", Config: "bootstrap/kubeadm/config/default", Flags: "cluster-api", Clusterctl: &Clusterctl{"kubeadm", "BootstrapProvider", "capi-kubeadm-bootstrap-system"}, VersionLDFlags: capiVersion("sigs.k8s.io/cluster-api/version", clusterAPI)},
	{Name: "control-plane-kubeadm", Module: clusterAPI, Nested: map[string]module{"api": clusterAPIAPI},
		Main: "./controlplane/kubeadm", Config: "controlplane/kubeadm/config/default", Flags: "cluster-api", Clusterctl: &Clusterctl{"kubeadm", "ControlPlaneProvider", "capi-kubeadm-control-plane-system"}, VersionLDFlags: capiVersion("sigs.k8s.io/cluster-api/version", clusterAPI)},
	{Name: "infrastructure-openstack", Module: capo,
		Main: ".", Config: "config/default", Flags: "cluster-api", Clusterctl: &Clusterctl{"openstack", "InfrastructureProvider", "capo-system"}, VersionLDFlags: capiVersion("sigs.k8s.io/cluster-api-provider-openstack/version", capo)},
	{Name: "orc", Module: orc,
		Main: "./cmd/manager", Config: "config/default", Flags: "kubebuilder"},
}

// Built is what providers.json records for each provider.
type Built struct {
	Name    string `json:"name"`
	Module  string `json:"module"`
	Version string `json:"version"`
	Binary  string `json:"binary"`
	// Components is the rendered kustomization, relative to the cache dir.
	Components string `json:"components"`
	// ModuleDir is the module's directory in the module cache (templates,
	// test data), valid while the module cache is.
	ModuleDir string `json:"moduleDir"`
	// Flags is the manager's command-line style (provider.Flags).
	Flags string `json:"flags"`
	// Clusterctl names the provider in clusterctl's inventory.
	Clusterctl *Clusterctl `json:"clusterctl,omitempty"`
}

func main() {
	out := flag.String("out", "", "cache directory to fill (required)")
	goCmd := flag.String("go", "go", "go command")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "capi: -out is required: the cache directory to fill")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := build(ctx, *goCmd, *out); err != nil {
		fmt.Fprintln(os.Stderr, "capi:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "capi: "+format+"\n", args...)
}

func build(ctx context.Context, goCmd, out string) error {
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	dirs := map[module]string{}
	for _, p := range providers {
		for _, m := range append([]module{p.Module}, nestedModules(p)...) {
			if _, ok := dirs[m]; ok {
				continue
			}
			d, err := download(ctx, goCmd, m)
			if err != nil {
				return err
			}
			dirs[m] = d
		}
	}
	logf("modules downloaded in %s", time.Since(start).Round(time.Millisecond))

	// One writable copy of each module's tree, nested modules in place.
	srcs := map[module]string{}
	for _, p := range providers {
		if _, ok := srcs[p.Module]; ok {
			continue
		}
		src := filepath.Join(tmp, "src", filepath.Base(p.Module.Path)+"@"+p.Module.Version)
		if err := copyTree(dirs[p.Module], src); err != nil {
			return err
		}
		for rel, m := range p.Nested {
			if err := copyTree(dirs[m], filepath.Join(src, rel)); err != nil {
				return err
			}
		}
		srcs[p.Module] = src
	}

	if err := os.MkdirAll(filepath.Join(tmp, "out", "bin"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "out", "components"), 0o755); err != nil {
		return err
	}
	var built []Built
	for _, p := range providers {
		src := srcs[p.Module]
		bin := filepath.Join("bin", p.Name)
		t := time.Now()
		logf("building %s (%s %s)", p.Name, p.Module.Path, p.Module.Version)
		ldflags := strings.Join(append([]string{"-s", "-w"}, p.VersionLDFlags...), " ")
		cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(tmp, "out", bin), p.Main)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s (%s@%s, %s): %w", p.Name, p.Module.Path, p.Module.Version, p.Main, err)
		}
		logf("built %s in %s", p.Name, time.Since(t).Round(time.Second))

		comp := filepath.Join("components", p.Name+".yaml")
		y, err := render(filepath.Join(src, p.Config))
		if err != nil {
			return fmt.Errorf("render %s's components (%s): %w", p.Name, p.Config, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "out", comp), y, 0o644); err != nil {
			return err
		}
		built = append(built, Built{Name: p.Name, Module: p.Module.Path, Version: p.Module.Version,
			Binary: bin, Components: comp, ModuleDir: dirs[p.Module], Flags: p.Flags, Clusterctl: p.Clusterctl})
	}
	// clusterctl's inventory CRD, so clusterctl's library (ConfigCluster,
	// describe) finds the providers as after clusterctl init.
	inv, err := os.ReadFile(filepath.Join(srcs[clusterAPI], "cmd", "clusterctl", "config", "manifest", "clusterctl-api.yaml"))
	if err != nil {
		return fmt.Errorf("clusterctl's inventory CRD: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "out", "components", "clusterctl-inventory.yaml"), inv, 0o644); err != nil {
		return err
	}
	flavors, err := renderFlavors(srcs[capo], filepath.Join(tmp, "out", "templates"))
	if err != nil {
		return err
	}
	logf("rendered CAPO's e2e flavors: %s", strings.Join(flavors, ", "))
	js, err := json.MarshalIndent(built, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "out", "providers.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "out"), out); err != nil {
		return err
	}
	logf("all managers built in %s", time.Since(start).Round(time.Second))
	return nil
}

func nestedModules(p provider) []module {
	var ms []module
	for _, m := range p.Nested {
		ms = append(ms, m)
	}
	return ms
}

// download fetches m into the module cache and checks its content against
// the pinned hash.
func download(ctx context.Context, goCmd string, m module) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", m.Path+"@"+m.Version)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil && runErr == nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", m.Path, m.Version, err)
	}
	if info.Error != "" || runErr != nil {
		return "", fmt.Errorf("go mod download %s@%s: %s%s (the Go module proxy must serve this version)", m.Path, m.Version, info.Error, strings.TrimSpace(stderr.String()))
	}
	if info.Sum != m.Sum {
		return "", fmt.Errorf("%s@%s: the module proxy served content %s, pinned %s", m.Path, m.Version, info.Sum, m.Sum)
	}
	return info.Dir, nil
}

// copyTree copies a module's files (read-only in the module cache) into a
// writable tree.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// renderFlavors builds every flavor under CAPO's test/e2e/data/kustomize into
// out/<flavor>.yaml, as CAPO's Makefile (e2e-templates) does with kustomize
// build --load-restrictor LoadRestrictionsNone.
func renderFlavors(capoSrc, out string) ([]string, error) {
	root := filepath.Join(capoSrc, "test", "e2e", "data", "kustomize")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("CAPO's e2e flavors: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); !e.IsDir() || err != nil {
			continue // components and shared bases are not flavors
		}
		var kind struct{ Kind string }
		b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(b, &kind); err != nil {
			return nil, fmt.Errorf("CAPO flavor %s: %w", e.Name(), err)
		}
		if kind.Kind == "Component" {
			continue
		}
		y, err := renderWith(dir, krusty.MakeDefaultOptions(), types.LoadRestrictionsNone)
		if err != nil {
			return nil, fmt.Errorf("render CAPO flavor %s: %w", e.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()+".yaml"), y, 0o644); err != nil {
			return nil, err
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// render runs kustomize build on dir, as the provider's Makefile does.
func render(dir string) ([]byte, error) {
	return renderWith(dir, krusty.MakeDefaultOptions(), types.LoadRestrictionsRootOnly)
}

func renderWith(dir string, opts *krusty.Options, load types.LoadRestrictions) ([]byte, error) {
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
		return nil, errors.New("no kustomization.yaml")
	}
	opts.LoadRestrictions = load
	k := krusty.MakeKustomizer(opts)
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return res.AsYaml()
}
