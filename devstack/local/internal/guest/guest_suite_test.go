package guest

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestGuest(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "guest image")
}
