package mgmtcluster_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestMgmtCluster(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "mgmtcluster")
}
