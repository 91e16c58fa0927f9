package devstack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stackgate/stackgate/tunnel"
)

// artifact is one file of a node's tarball.
type artifact struct {
	name string
	data []byte
}

// nodeArtifacts are the files of one node, before redaction.
type nodeArtifacts struct {
	node    string
	logs    []artifact
	configs []artifact
	dumps   []artifact
}

// CollectLogs writes one tarball per node into dir (<node>.tar.gz): the
// node's service logs (logs/), its rendered configuration with every
// password redacted (etc/) and, in the controller's, JSON dumps of the
// cloud's servers, networks, subnets, routers, ports, floating IPs, security
// groups, volumes, load balancers, availability zones, hypervisors and
// services (openstack/). Logs come from StateDir for a local host and over
// SSH otherwise. Every file is redacted (Redactor.Redact): the passwords of
// clouds.yaml, every credential found in the configuration, URL passwords
// and the value of every option named like a credential, at a line's start
// or within it (password=..., X-Auth-Token: ..., "token": "..."), never
// reach the artifacts.
// Key material (TLS and SSH keys, keystone's fernet and credential keys,
// secret files) is never read; a remote node leaves it out of what it sends.
// It returns the tarballs written; an error says what could not be
// collected (the tarballs then hold the rest, and errors.txt says what is missing).
func (e *Environment) CollectLogs(ctx context.Context, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("collecting logs: %w", err)
	}
	ctl := nodeName(e.Controller, "controller")
	wrk := nodeName(e.Worker, "worker")
	nodes := map[string]*nodeArtifacts{ctl: {node: ctl}, wrk: {node: wrk}}
	var errs []error
	if e.StateDir != "" {
		if err := e.localArtifacts(nodes[ctl], nodes[wrk]); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, e.remoteArtifacts(ctx, nodes[ctl], e.Controller, true)...)
		errs = append(errs, e.remoteArtifacts(ctx, nodes[wrk], e.Worker, false)...)
	}
	dumps, err := e.dumps(ctx)
	nodes[ctl].dumps = dumps
	if err != nil {
		errs = append(errs, err)
	}

	r := NewRedactor()
	if cy, err := ParseCloudsYAML(e.CloudsYAML); err == nil {
		for _, s := range cy.secrets() {
			r.add(s)
		}
	}
	for _, n := range nodes {
		for _, c := range n.configs {
			r.Learn(c.data)
		}
	}
	var out []string
	for _, name := range []string{ctl, wrk} {
		n := nodes[name]
		p := filepath.Join(dir, name+".tar.gz")
		var notes []string
		for _, err := range errs {
			notes = append(notes, err.Error())
		}
		if err := writeTarball(p, n, r, notes); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("collecting logs: %w", err)
	}
	return out, nil
}

func nodeName(n Node, def string) string {
	if n.Name != "" {
		return n.Name
	}
	return def
}

// workerFile says whether a file of a local state directory belongs to the
// worker: its services carry the suffix -worker.
func workerFile(name string) bool {
	base := strings.TrimSuffix(path.Base(name), path.Ext(name))
	return strings.HasSuffix(base, "-worker") || strings.HasPrefix(base, "node-worker")
}

// localArtifacts reads the logs and configuration a local host keeps in
// StateDir (logs/ and etc/). Key material (see sensitiveNames) is never
// read, nor anything below a directory named like it.
func (e *Environment) localArtifacts(ctl, wrk *nodeArtifacts) error {
	var errs []error
	walk := func(sub string, add func(n *nodeArtifacts, a artifact)) {
		root := filepath.Join(e.StateDir, sub)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if sensitiveFile(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir // key directories: fernet-keys, credential-keys
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n := ctl
			if workerFile(rel) {
				n = wrk
			}
			add(n, artifact{name: path.Join(sub, filepath.ToSlash(rel)), data: b})
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", root, err))
		}
	}
	walk("logs", func(n *nodeArtifacts, a artifact) { n.logs = append(n.logs, a) })
	walk("etc", func(n *nodeArtifacts, a artifact) { n.configs = append(n.configs, a) })
	return errors.Join(errs...)
}

// sensitiveNames are the file and directory names (glob patterns, lower
// case) that hold key material: TLS and SSH keys, keystone's fernet and
// credential keys, secret files. Log collection reads nothing at or below
// them.
var sensitiveNames = []string{"*.pem", "*.key", "*secret*", "id_*", "*host_key*", "authorized_keys", "*fernet*", "*credential*"}

// sensitiveFile says whether a file or directory name holds key material.
func sensitiveFile(name string) bool {
	n := strings.ToLower(name)
	for _, pattern := range sensitiveNames {
		if ok, _ := path.Match(pattern, n); ok {
			return true
		}
	}
	return false
}

// sensitivePath says whether any element of a slash-separated path holds
// key material: etc/keystone/fernet-keys/0 does, by its directory.
func sensitivePath(p string) bool {
	return slices.ContainsFunc(strings.Split(p, "/"), sensitiveFile)
}

// remoteNode says how CollectLogs reads a remote node over SSH.
type remoteNode struct {
	// root is the directory the configuration paths are relative to.
	root string
	// units lists the node's DevStack units, one per line.
	units string
	// journal is a format with one verb, the unit: the command that prints
	// the unit's log.
	journal string
}

// devstackNode is a DevStack node: services run as systemd units
// devstack@*, configuration lives in /etc and DevStack's local.conf.
var devstackNode = remoteNode{
	root:    "/",
	units:   `systemctl list-units 'devstack@*' --all --no-legend --plain 2>/dev/null | awk '{print $1}'`,
	journal: `sudo journalctl --no-pager -o short-precise -u %q`,
}

// remoteConfigDirs are the configuration paths read from a remote node,
// relative to its root.
var remoteConfigDirs = []string{"etc/keystone", "etc/nova", "etc/neutron", "etc/glance", "etc/cinder", "etc/placement", "etc/octavia", "opt/stack/devstack/local.conf"}

// configsCommand writes a tar of the node's configuration to stdout. Key
// material is excluded on the node already (GNU tar matches the patterns
// against every element of a member's path), so it never crosses the
// network; the reader checks again.
func (n remoteNode) configsCommand() string {
	var b strings.Builder
	// Single quotes suffice: the root and the patterns are constants
	// without quotes.
	fmt.Fprintf(&b, "sudo tar -C '%s' --ignore-failed-read --ignore-case", n.root)
	for _, p := range sensitiveNames {
		fmt.Fprintf(&b, " --exclude='%s'", p)
	}
	b.WriteString(" -cf -")
	for _, d := range remoteConfigDirs {
		b.WriteString(" " + d)
	}
	b.WriteString(" 2>/dev/null; true")
	return b.String()
}

// remoteArtifacts reads a remote node's logs and configuration over SSH:
// the controller at its public address, the worker through the tunnel.
func (e *Environment) remoteArtifacts(ctx context.Context, n *nodeArtifacts, node Node, controller bool) []error {
	signer, err := ssh.ParsePrivateKey(e.SSH.PrivateKey)
	if err != nil {
		return []error{fmt.Errorf("%s: ssh key: %w", n.node, err)}
	}
	hostKey := node.HostKey
	if controller {
		hostKey = e.SSH.HostKey
	}
	if hostKey == "" {
		return []error{fmt.Errorf("%s: its SSH host key is unknown (Node.HostKey), so its logs were not collected", n.node)}
	}
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		return []error{fmt.Errorf("%s: host key: %w", n.node, err)}
	}
	cfg := &ssh.ClientConfig{User: e.SSH.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(pinned),
		HostKeyAlgorithms: tunnel.HostKeyAlgorithms(pinned), Timeout: 30 * time.Second}
	tun, err := e.sharedTunnel(ctx)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", n.node, err)}
	}
	addr := e.SSH.Address
	if !controller {
		addr = fmt.Sprintf("%s:22", node.PrivateIP)
	}
	client, err := tun.Jump(ctx, addr, cfg)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", n.node, err)}
	}
	defer client.Close()
	run := func(cmd string) ([]byte, error) {
		s, err := client.NewSession()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		stop := context.AfterFunc(ctx, func() { _ = s.Close() })
		defer stop()
		return s.Output(cmd)
	}
	var errs []error
	units, err := run(devstackNode.units)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: listing devstack units: %w", n.node, err))
	}
	for _, u := range strings.Fields(string(units)) {
		b, err := run(fmt.Sprintf(devstackNode.journal, u))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: journal of %s: %w", n.node, u, err))
			continue
		}
		n.logs = append(n.logs, artifact{name: "logs/" + strings.TrimSuffix(strings.TrimPrefix(u, "devstack@"), ".service") + ".log", data: b})
	}
	tb, err := run(devstackNode.configsCommand())
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: configuration: %w", n.node, err))
	}
	tr := tar.NewReader(bytes.NewReader(tb))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag != tar.TypeReg || sensitivePath(name) {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			break
		}
		// etc/nova/nova.conf stays etc/nova/nova.conf, as from a local
		// host; other paths go below etc/ (etc/opt/stack/devstack/local.conf).
		n.configs = append(n.configs, artifact{name: path.Join("etc", strings.TrimPrefix(name, "etc/")), data: b})
	}
	return errs
}

// dumps lists the cloud's resources as the admin sees them.
func (e *Environment) dumps(ctx context.Context) ([]artifact, error) {
	c, err := e.Clients(ctx, e.Config.WithDefaults().CloudAdmin)
	if err != nil {
		return nil, fmt.Errorf("resource dumps: %w", err)
	}
	var out []artifact
	var errs []error
	for _, k := range resourceKinds {
		if k.dump == "" {
			continue
		}
		sc := k.service(c)
		if sc == nil {
			errs = append(errs, fmt.Errorf("listing %s: the catalog has no service that lists them", k.dump))
			continue
		}
		v, _, err := k.list(ctx, sc)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", k.dump, err))
			continue
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			errs = append(errs, fmt.Errorf("encoding %s: %w", k.dump, err))
			continue
		}
		out = append(out, artifact{name: "openstack/" + k.dump + ".json", data: append(b, '\n')})
	}
	return out, errors.Join(errs...)
}

// writeTarball writes a node's artifacts, redacted, to p (mode 0600).
func writeTarball(p string, n *nodeArtifacts, r *Redactor, notes []string) (err error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", p, cerr)
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	var files []artifact
	files = append(files, n.logs...)
	files = append(files, n.configs...)
	files = append(files, n.dumps...)
	if len(notes) > 0 {
		files = append(files, artifact{name: "errors.txt", data: []byte(strings.Join(notes, "\n") + "\n")})
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].name < files[j].name })
	now := time.Now()
	for _, a := range files {
		data := r.Redact(a.data)
		h := &tar.Header{Name: path.Join(n.node, a.name), Mode: 0o600, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}
