package cloudinit_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stackgate/stackgate/devstack/cloudinit"
)

// The scripts' one waiting primitive is run for real with bash, from the
// rendered document, so the bound the nodes rely on is tested.
var _ = Describe("wait_for in the rendered lib.sh", func() {
	var lib string

	BeforeEach(func() {
		u := parseUserData(render(fixtureInput(cloudinit.Worker)))
		lib = filepath.Join(GinkgoT().TempDir(), "lib.sh")
		Expect(os.WriteFile(lib, []byte(u.file("/var/lib/stackgate/lib.sh")), 0o644)).To(Succeed())
	})

	// run sources lib.sh in bash and runs script; it fails the spec if bash
	// is still running after limit.
	run := func(limit time.Duration, script string) (string, int) {
		GinkgoHelper()
		return runWithin(limit, "bash to run "+strconv.Quote(script), GinkgoT().TempDir(), nil,
			"bash", "-c", "set -o errexit -o nounset -o pipefail; source \"$0\"; "+script, lib)
	}

	It("gives up after its limit, saying what it waited for and what it saw last", func() {
		out, code := run(30*time.Second, `probe() { echo x >> attempts; echo "attempt $(wc -l < attempts): still down"; return 1; }; wait_for 3 "the impossible" probe`)
		Expect(code).To(Equal(1))
		Expect(out).To(ContainSubstring("gave up after 3s waiting for the impossible; the last attempt said:"))
		Expect(out).To(MatchRegexp(`attempt [2-9]: still down`))
		Expect(strings.Count(out, "still down")).To(Equal(1), "only the last attempt's output is shown")
	})

	It("returns as soon as the command succeeds", func() {
		out, code := run(30*time.Second, `probe() { [ -e ready ] || { touch ready; return 1; }; }; wait_for 60 "the flag file" probe`)
		Expect(code).To(Equal(0))
		Expect(out).To(MatchRegexp(`done after [0-9]+s: the flag file`))
	})

	It("fails the spec instead of hanging it when wait_for outlives the spec's limit", func() {
		// The failure names the 1 s limit: that, not wait_for's 600 s, ended it.
		failures := InterceptGomegaFailures(func() {
			run(time.Second, `wait_for 600 "a service that never comes" false`)
		})
		Expect(failures).To(ConsistOf(And(
			ContainSubstring("gave up after 1s waiting for bash to run"),
			ContainSubstring("a service that never comes"),
		)))
	})
})
