package devstack_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestDevstack(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "devstack")
}
