package framework_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestFramework(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "framework")
}

// The kube-apiserver of envtest is started by the first spec that calls
// startEnvtest (see envtest_test.go) and stopped here; suites that run no
// such spec never build or start it.
var _ = AfterSuite(func() {
	stopEnvtest()
})
