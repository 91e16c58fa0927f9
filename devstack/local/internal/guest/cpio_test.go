package guest

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Archive", func() {
	build := func() *bytes.Buffer {
		var a Archive
		a.Add(File{Name: "/bin/busybox", Mode: 0o755, Data: []byte("#!busybox\n")})
		a.Add(File{Name: "bin/sh", Mode: fs.ModeSymlink | 0o777, Data: []byte("/bin/busybox")})
		a.Add(File{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1})
		a.Add(File{Name: "etc/udhcpc.script", Mode: 0o755, Data: []byte("odd length")})
		Expect(a.Len()).To(Equal(7)) // bin, dev, etc added as parents
		var b bytes.Buffer
		_, err := a.WriteTo(&b)
		Expect(err).NotTo(HaveOccurred())
		return &b
	}

	It("gives the same bytes for the same entries", func() {
		Expect(build().Bytes()).To(Equal(build().Bytes()))
	})

	It("is a newc archive GNU cpio reads: names, types, modes, devices, symlinks, contents", func() {
		zr, err := gzip.NewReader(build())
		Expect(err).NotTo(HaveOccurred())
		raw, err := io.ReadAll(zr)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw[:6])).To(Equal("070701"))
		cmd := exec.Command("cpio", "-itv", "--quiet")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		Expect(lines).To(HaveLen(7))
		Expect(lines[0]).To(MatchRegexp(`^drwxr-xr-x .* bin$`))
		Expect(lines[1]).To(MatchRegexp(`^-rwxr-xr-x .* 10 .* bin/busybox$`))
		Expect(lines[2]).To(MatchRegexp(`^lrwxrwxrwx .* bin/sh -> /bin/busybox$`))
		Expect(lines[4]).To(MatchRegexp(`^crw------- .* 5,\s*1 .* dev/console$`))
		Expect(lines[6]).To(MatchRegexp(`^-rwxr-xr-x .* 10 .* etc/udhcpc.script$`))

		cmd = exec.Command("cpio", "-i", "--quiet", "--to-stdout", "etc/udhcpc.script")
		cmd.Stdin = bytes.NewReader(raw)
		content, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(content)).To(Equal("odd length"))
	})

	It("refuses a file type it cannot write", func() {
		var a Archive
		a.Add(File{Name: "fifo", Mode: fs.ModeNamedPipe | 0o644})
		_, err := a.WriteTo(io.Discard)
		Expect(err).To(MatchError(ContainSubstring("fifo: unsupported mode")))
	})
})
