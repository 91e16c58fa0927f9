package cloudinit_test

import (
	"flag"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// update rewrites the golden files under testdata instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestCloudInit(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "cloudinit")
}
