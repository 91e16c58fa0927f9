// Package guest builds the local host's guest image: Debian's cloud kernel and
// an initramfs holding busybox, the kernel modules a VM needs (virtio, the
// config drive's filesystems) and guestinit, which reads nova's metadata and
// serves SSH. Its parts are plain files: a newc cpio archive, written
// deterministically (no timestamps, owners root), gzip'd.
package guest

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// File is one entry of an archive: a file, directory, symlink or device node.
type File struct {
	// Name is the path inside the archive, without a leading slash.
	Name string
	// Mode holds the type bits (fs.ModeDir, fs.ModeSymlink, fs.ModeDevice |
	// fs.ModeCharDevice) and the permission bits.
	Mode fs.FileMode
	// Data is a regular file's content, or a symlink's target.
	Data []byte
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
}

// Archive is a set of entries written as one newc cpio archive.
type Archive struct {
	entries map[string]File
}

// Add adds e, and every parent directory not added yet; a second entry of
// the same name replaces the first.
func (a *Archive) Add(e File) {
	if a.entries == nil {
		a.entries = map[string]File{}
	}
	e.Name = strings.TrimPrefix(path.Clean("/"+e.Name), "/")
	for dir := path.Dir(e.Name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := a.entries[dir]; !ok {
			a.entries[dir] = File{Name: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	a.entries[e.Name] = e
}

// Len is the number of entries.
func (a *Archive) Len() int { return len(a.entries) }

// WriteTo writes the archive gzip'd to w, entries sorted by name (so
// parents come first) with inode numbers in that order: the same entries
// give the same bytes.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if err := writeEntry(zw, uint32(i+1), a.entries[n]); err != nil {
			return cw.n, err
		}
	}
	if err := writeEntry(zw, 0, File{Name: "TRAILER!!!"}); err != nil {
		return cw.n, err
	}
	if err := zw.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// cpio's mode bits.
const (
	cpioDir     = 0o040000
	cpioRegular = 0o100000
	cpioSymlink = 0o120000
	cpioChar    = 0o020000
)

func writeEntry(w io.Writer, ino uint32, e File) error {
	var mode uint32
	switch {
	case e.Name == "TRAILER!!!":
	case e.Mode&fs.ModeDir != 0:
		mode = cpioDir
	case e.Mode&fs.ModeSymlink != 0:
		mode = cpioSymlink
	case e.Mode&fs.ModeCharDevice != 0:
		mode = cpioChar
	case e.Mode.IsRegular():
		mode = cpioRegular
	default:
		return fmt.Errorf("cpio: %s: unsupported mode %v", e.Name, e.Mode)
	}
	mode |= uint32(e.Mode.Perm())
	nlink := 1
	if mode&cpioDir != 0 {
		nlink = 2
	}
	name := e.Name + "\x00"
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(name), 0)
	if _, err := io.WriteString(w, hdr+name); err != nil {
		return err
	}
	if err := pad(w, len(hdr)+len(name)); err != nil {
		return err
	}
	if _, err := w.Write(e.Data); err != nil {
		return err
	}
	return pad(w, len(e.Data))
}

// pad writes the zeros that align n bytes to 4.
func pad(w io.Writer, n int) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
