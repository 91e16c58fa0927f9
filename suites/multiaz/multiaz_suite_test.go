package multiaz_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/suites/internal/e2esuite"
)

var suite = e2esuite.Register("multiaz")

func TestMultiAZ(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "multi-az")
}
