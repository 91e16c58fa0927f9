// Package mgmtcluster runs a Cluster API management cluster without kind or
// container images: a kube-apiserver and etcd from controller-runtime's
// envtest, and the real managers of Cluster API (core, kubeadm bootstrap,
// kubeadm control plane), CAPO and ORC as processes on this machine, built
// at pinned versions from the Go module proxy by hack/capi/build.sh.
//
// Each provider's CRDs and webhook configurations come from its own
// kustomization (rendered at build time), so Cluster API's contract labels
// stay; conversion webhooks and webhook configurations are rewritten from
// in-cluster services to URLs on loopback, with a CA generated for the run.
// The managers reach OpenStack as they would in kind behind a proxy: through
// the tunnel's proxy port, given to them as HTTPS_PROXY and friends.
//
// A minimal use, with a tunnel t serving its proxy port on l:
//
//	mc, err := mgmtcluster.Start(ctx, mgmtcluster.Config{
//		Dir:      os.Getenv("STACKGATE_CAPI_DIR"), // hack/capi/build.sh
//		ProxyEnv: t.Env(l.Addr().String()),
//		LogDir:   filepath.Join(artifacts, "managers"),
//	})
//	if err != nil { return err }
//	defer mc.Stop()
//	proxy := mc.ClusterProxy("bootstrap", scheme) // Cluster API's test framework ClusterProxy
package mgmtcluster
