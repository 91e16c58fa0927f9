//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"
)

// metadataURL is nova's metadata service as a guest reaches it.
const metadataURL = "http://169.254.169.254/openstack/latest/"

// metaData is what the guest reads of openstack/latest/meta_data.json.
type metaData struct {
	UUID       string            `json:"uuid"`
	Name       string            `json:"name"`
	Hostname   string            `json:"hostname"`
	PublicKeys map[string]string `json:"public_keys"`
}

// cloudConfig is what the guest reads of a #cloud-config user-data.
type cloudConfig struct {
	Hostname          string            `json:"hostname"`
	SSHAuthorizedKeys []string          `json:"ssh_authorized_keys"`
	SSHKeys           map[string]string `json:"ssh_keys"`
	Users             []json.RawMessage `json:"users"`
	RunCmd            []json.RawMessage `json:"runcmd"`
}

type cloudUser struct {
	Name              string   `json:"name"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys"`
}

func runGuest() error {
	_ = os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0) // keep the console for this log
	if err := setUpLoopback(); err != nil {
		logf("lo: %v", err)
	}
	iface, err := firstInterface()
	if err != nil {
		return err
	}
	dhcp := exec.Command("udhcpc", "-f", "-i", iface, "-s", "/etc/udhcpc.script", "-t", "60", "-T", "1", "-A", "1", "-O", "mtu", "-O", "staticroutes")
	dhcp.Stdout, dhcp.Stderr = os.Stdout, os.Stdout
	if err := dhcp.Start(); err != nil {
		return fmt.Errorf("udhcpc: %w", err)
	}
	waitFor("an address on "+iface, 90*time.Second, func() bool { return hasAddress(iface) })

	md, userData, err := readMetadata()
	if err != nil {
		logf("metadata: %v", err)
	}
	var cc cloudConfig
	if ud := decodeUserData(userData); len(ud) > 0 {
		if err := yaml.Unmarshal(ud, &cc); err != nil {
			logf("user-data: not a cloud-config this guest reads: %v", err)
		}
	}
	hostname := firstNonEmpty(cc.Hostname, md.Hostname, md.Name, "guest")
	hostname, _, _ = strings.Cut(hostname, ".")
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		logf("hostname: %v", err)
	}
	logf("hostname %s, server %s", hostname, md.UUID)

	users := map[string]bool{"root": true, "cirros": true, "ubuntu": true, "debian": true}
	var authorized []ssh.PublicKey
	addKey := func(s string) {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			logf("ssh key %.30q: %v", s, err)
			return
		}
		authorized = append(authorized, k)
	}
	for _, k := range md.PublicKeys {
		addKey(k)
	}
	for _, k := range cc.SSHAuthorizedKeys {
		addKey(k)
	}
	for _, raw := range cc.Users {
		var u cloudUser
		if json.Unmarshal(raw, &u) == nil && u.Name != "" {
			users[u.Name] = true
			for _, k := range u.SSHAuthorizedKeys {
				addKey(k)
			}
		}
	}
	signers, err := hostKeys(cc.SSHKeys)
	if err != nil {
		return err
	}
	printHostKeys(signers)
	runCommands(cc.RunCmd)
	logf("authorized keys: %d", len(authorized))
	return serveSSH(signers, users, authorized)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// waitFor polls cond every 200 ms until it holds or timeout passes; the guest
// goes on either way (a guest without an address still prints its console).
func waitFor(what string, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			logf("gave up waiting for %s after %s", what, timeout)
			return false
		}
		<-t.C
	}
	return true
}

func setUpLoopback() error {
	return exec.Command("ip", "link", "set", "lo", "up").Run()
}

func firstInterface() (string, error) {
	var found string
	waitFor("a network interface", 30*time.Second, func() bool {
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 {
				found = i.Name
				return true
			}
		}
		return false
	})
	if found == "" {
		return "", errors.New("no network interface")
	}
	return found, nil
}

func hasAddress(iface string) bool {
	i, err := net.InterfaceByName(iface)
	if err != nil {
		return false
	}
	addrs, _ := i.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return true
		}
	}
	return false
}

// readMetadata reads the config drive (label config-2), or else the
// metadata service.
func readMetadata() (metaData, []byte, error) {
	var md metaData
	if dir, ok := mountConfigDrive(); ok {
		logf("metadata from the config drive")
		b, err := os.ReadFile(filepath.Join(dir, "openstack/latest/meta_data.json"))
		if err != nil {
			return md, nil, err
		}
		if err := json.Unmarshal(b, &md); err != nil {
			return md, nil, fmt.Errorf("meta_data.json: %w", err)
		}
		ud, _ := os.ReadFile(filepath.Join(dir, "openstack/latest/user_data"))
		return md, ud, nil
	}
	logf("no config drive; metadata from %s", metadataURL)
	client := &http.Client{Timeout: 5 * time.Second}
	var b []byte
	var lastErr error
	waitFor("the metadata service", 60*time.Second, func() bool {
		b, lastErr = get(client, metadataURL+"meta_data.json")
		return lastErr == nil
	})
	if lastErr != nil {
		return md, nil, lastErr
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return md, nil, fmt.Errorf("meta_data.json: %w", err)
	}
	ud, err := get(client, metadataURL+"user_data")
	if err != nil {
		ud = nil // a server without user-data answers 404
	}
	return md, ud, nil
}

func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// mountConfigDrive mounts the block device labelled config-2 (iso9660 or
// vfat) read-only on /run/config-drive.
func mountConfigDrive() (string, bool) {
	const dir = "/run/config-drive"
	var devs []string
	waitFor("block devices", 3*time.Second, func() bool {
		devs, _ = filepath.Glob("/sys/class/block/*")
		return len(devs) > 0
	})
	_ = os.MkdirAll(dir, 0o755)
	for _, d := range devs {
		dev := "/dev/" + filepath.Base(d)
		for _, fs := range []string{"iso9660", "vfat"} {
			if unix.Mount(dev, dir, fs, unix.MS_RDONLY, "") == nil {
				if _, err := os.Stat(filepath.Join(dir, "openstack/latest/meta_data.json")); err == nil {
					return dir, true
				}
				_ = unix.Unmount(dir, 0)
			}
		}
	}
	return "", false
}

// decodeUserData gunzips gzip'd user-data; MIME multipart and scripts are
// read as they are (a #cloud-config part at the start is what counts here).
func decodeUserData(b []byte) []byte {
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err == nil {
			if out, err := io.ReadAll(io.LimitReader(r, 16<<20)); err == nil {
				b = out
			}
		}
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("#cloud-config")) {
		return nil
	}
	return b
}

// hostKeys parses the host keys of cloud-init's ssh_keys (rsa_private,
// ecdsa_private, ed25519_private) or generates an ed25519 one.
func hostKeys(keys map[string]string) ([]ssh.Signer, error) {
	var signers []ssh.Signer
	for _, name := range []string{"ed25519_private", "ecdsa_private", "rsa_private"} {
		pem, ok := keys[name]
		if !ok {
			continue
		}
		s, err := ssh.ParsePrivateKey([]byte(pem))
		if err != nil {
			logf("ssh_keys.%s: %v", name, err)
			continue
		}
		signers = append(signers, s)
	}
	if len(signers) > 0 {
		return signers, nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	return []ssh.Signer{s}, nil
}

// printHostKeys prints the host keys as cloud-init does, so that a caller
// reading the console log can pin them.
func printHostKeys(signers []ssh.Signer) {
	var b strings.Builder
	b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
	for _, s := range signers {
		b.Write(ssh.MarshalAuthorizedKey(s.PublicKey()))
	}
	b.WriteString("-----END SSH HOST KEY KEYS-----\n")
	os.Stdout.WriteString(b.String())
}

// runCommands runs cloud-init's runcmd: a string through sh -c, a list as
// argv. A command that fails is logged; the boot goes on.
func runCommands(cmds []json.RawMessage) {
	for _, raw := range cmds {
		var argv []string
		var s string
		if json.Unmarshal(raw, &s) == nil {
			argv = []string{"/bin/sh", "-c", s}
		} else if json.Unmarshal(raw, &argv) != nil || len(argv) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		logf("runcmd %q: %v\n%s", argv, err, out)
	}
}
