package guest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Modules are the kernel modules the guest loads (with what they depend
// on): virtio's PCI transport, network, disk, console and entropy devices,
// what nova's config drive needs (an IDE CD-ROM with iso9660, or vfat:
// this kernel has no SATA, hence nova's hw_machine_type pc), and ACPI's power button, on which the guest powers off.
var Modules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_console", "virtio_rng",
	"ata_piix", "sr_mod", "isofs", "vfat", "nls_cp437", "nls_utf8", "button", "evdev",
}

// ModuleOrder finds the modules wanted, and every module they depend on
// (the depends= of each module's .modinfo), in a kernel's module tree
// (lib/modules/<version>, as the kernel's package ships it: without the
// modules.dep that depmod writes at install). It returns their paths
// relative to the tree, each once, dependencies first.
func ModuleOrder(tree fs.FS, wanted []string) ([]string, error) {
	byName := map[string]string{}
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			byName[moduleName(p)] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A module built into the kernel (modules.builtin) needs no loading.
	if b, err := fs.ReadFile(tree, "modules.builtin"); err == nil {
		for _, l := range strings.Fields(string(b)) {
			if _, ok := byName[moduleName(l)]; !ok {
				byName[moduleName(l)] = ""
			}
		}
	}
	return loadOrder(byName, func(p string) ([]string, error) { return moduleDepends(tree, p) }, wanted)
}

// loadOrder orders the modules wanted and their dependencies (depends
// gives a module's, by name), dependencies first, each once. byName maps
// a module's name to its path; "" for a module built into the kernel.
func loadOrder(byName map[string]string, depends func(path string) ([]string, error), wanted []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, by string) error
	visit = func(name, by string) error {
		p, ok := byName[name]
		if ok && p == "" {
			return nil // built in
		}
		if !ok {
			if by != "" {
				return fmt.Errorf("kernel module %s (needed by %s): not in the module tree", name, by)
			}
			return fmt.Errorf("kernel module %s: not in the module tree (built into this kernel, or not built at all)", name)
		}
		switch state[p] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("kernel module %s: dependency cycle", name)
		}
		state[p] = 1
		deps, err := depends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[p] = 2
		order = append(order, p)
		return nil
	}
	for _, w := range wanted {
		if err := visit(strings.ReplaceAll(w, "-", "_"), ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(tree fs.FS, p string) ([]string, error) {
	b, err := fs.ReadFile(tree, p)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: %w", p, err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("kernel module %s: no .modinfo section", p)
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: .modinfo: %w", p, err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

// moduleName is a module's name as modprobe spells it: the file's base
// name without .ko, dashes as underscores.
func moduleName(p string) string {
	b, _, _ := strings.Cut(path.Base(p), ".ko")
	return strings.ReplaceAll(b, "-", "_")
}
