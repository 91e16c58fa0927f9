package capo_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	capiframework "sigs.k8s.io/cluster-api/test/framework"

	"github.com/stackgate/stackgate/framework"
	"github.com/stackgate/stackgate/framework/mgmtcluster"
	"github.com/stackgate/stackgate/internal/buildscript"
	"github.com/stackgate/stackgate/suites/internal/e2esuite"
)

// buildTimeout bounds the managers' and kube-apiserver's builds when their
// caches are cold (several minutes each on two cores).
const buildTimeout = 60 * time.Minute

// suite is registered in init: its set-up function reads it.
var suite *e2esuite.Suite

func init() { suite = e2esuite.Register("capo", startManagementCluster) }

var (
	// mgmt is the management cluster of this process.
	mgmt *mgmtcluster.Cluster
	// proxy is the Cluster API test framework's view of it.
	proxy capiframework.ClusterProxy
	// capiDir is the managers' cache directory (templates/ has CAPO's
	// rendered e2e flavors).
	capiDir string
	// mgmtStartTime is how long mgmtcluster.Start took.
	mgmtStartTime time.Duration
)

func TestCAPO(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "capo")
}

// startManagementCluster serves the tunnel's proxy port for the managers and
// starts the management cluster; both stop after the suite. The specs are
// Serial, so they run on process 1, the only one that starts it.
func startManagementCluster(ctx SpecContext) {
	if GinkgoParallelProcess() != 1 {
		return
	}
	var err error
	capiDir, err = buildscript.Dir(ctx, "STACKGATE_CAPI_DIR", "../../hack/capi/build.sh", "capi", buildTimeout, GinkgoWriter, "providers.json")
	Expect(err).NotTo(HaveOccurred())
	assets, err := buildscript.Dir(ctx, "KUBEBUILDER_ASSETS", "../../hack/envtest/build.sh", "envtest", buildTimeout, GinkgoWriter, "kube-apiserver", "etcd")
	Expect(err).NotTo(HaveOccurred())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	t := suite.DevStack.Tunnel
	go func() { _ = t.Serve(l) }()
	DeferCleanup(func() {
		// Serve closes the listener when the tunnel closes first.
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			Fail(err.Error())
		}
	})

	logDir := filepath.Join(suite.Flags.ArtifactFolder, "capo", "managers")
	Expect(os.MkdirAll(logDir, 0o755)).To(Succeed())
	start, err := framework.IntervalTimeout(suite.E2EConfig.GetIntervals("capo", "wait-controllers")...)
	Expect(err).NotTo(HaveOccurred())
	began := time.Now()
	mgmt, err = mgmtcluster.Start(ctx, mgmtcluster.Config{
		Dir: capiDir, KubeAPIServerAssets: assets, ProxyEnv: t.Env(l.Addr().String()), LogDir: logDir,
		StartTimeout: start,
	})
	Expect(err).NotTo(HaveOccurred(), "Couldn't start the management cluster")
	DeferCleanup(func() { Expect(mgmt.Stop()).To(Succeed()) })
	proxy = mgmt.ClusterProxy("capo-e2e", scheme())
	mgmtStartTime = time.Since(began)
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(s)).To(Succeed())
	Expect(clusterv1.AddToScheme(s)).To(Succeed())
	return s
}

// timeout and polling are the e2e configuration's intervals for key.
func timeout(key string) time.Duration {
	GinkgoHelper()
	d, err := framework.IntervalTimeout(suite.E2EConfig.GetIntervals("capo", key)...)
	Expect(err).NotTo(HaveOccurred(), "interval %s", key)
	return d
}

func polling(key string) time.Duration {
	GinkgoHelper()
	d, err := framework.IntervalPolling(0, suite.E2EConfig.GetIntervals("capo", key)...)
	Expect(err).NotTo(HaveOccurred(), "interval %s", key)
	return d
}
