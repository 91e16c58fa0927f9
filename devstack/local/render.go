//go:build linux

package local

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/stackgate/stackgate/data"
	"github.com/stackgate/stackgate/devstack"
)

// wsgiApp is an API served by uwsgi.
type wsgiApp struct {
	Name      string
	Port      int
	File      string
	Processes int
	// Threads per process; 0 means 4.
	Threads int
	Env     []string
	Argv    string
}

type nodeData struct {
	Name string
	IP   netip.Addr
	AZ   string
}

// tmplData is what the templates under data/local see.
type tmplData struct {
	devstack.Config
	State             string
	Password          string
	DB                string
	AMQP              string
	KeystoneURL       string
	PublicIP          netip.Addr
	ExternalInterface string
	Node              nodeData
	App               wsgiApp
	// Virt is how servers run (VirtQEMU, VirtFake).
	Virt string
	// Metadata is how neutron's metadata agent reaches nova's metadata API.
	Metadata metadataData
	// The volume backend (ceph.go): the cluster's fsid, the size of its
	// OSD's file, its pool and cinder's backend name.
	// VMsPerNode is the servers each node's nova-compute takes (VMsPerNode).
	VMsPerNode    int
	CephFSID      string
	CephOSDBytes  int64
	CephPool      string
	VolumeBackend string
}

// password returns the instance's password for every service, database and
// user, created on first use (state file secret, 0600).
func (h *Host) password() (string, error) {
	p := h.path("secret")
	if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) >= 16 {
		return string(bytes.TrimSpace(b)), nil
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(b)
	if err := os.WriteFile(p, []byte(pw), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return pw, nil
}

func (h *Host) apps(cfg devstack.Config) []wsgiApp {
	etc := h.path("etc")
	return []wsgiApp{
		{Name: "keystone", Port: 5000, File: "/usr/bin/keystone-wsgi-public", Processes: 2, Env: []string{"OS_KEYSTONE_CONFIG_FILES=" + filepath.Join(etc, "keystone.conf")}},
		{Name: "placement", Port: 8778, File: "/usr/bin/placement-api", Processes: 1, Env: []string{"OS_PLACEMENT_CONFIG_DIR=" + filepath.Join(etc, "placement")}},
		{Name: "nova-api", Port: 8774, File: "/usr/bin/nova-api-wsgi", Processes: 2, Threads: 1, Env: []string{"OS_NOVA_CONFIG_DIR=" + filepath.Join(etc, "nova")}},
		{Name: "octavia-api", Port: 9876, File: "/usr/bin/octavia-wsgi", Processes: 1, Argv: "--config-file " + filepath.Join(etc, "octavia.conf")},
		h.metadataApp(),
	}
}

// renderConfigs writes every configuration file of the instance to etc/.
func (h *Host) renderConfigs(cfg devstack.Config) error {
	pw, err := h.password()
	if err != nil {
		return err
	}
	fsid, err := h.cephFSID()
	if err != nil {
		return err
	}
	n := h.names()
	base := tmplData{
		Config:        cfg,
		State:         h.stateDir,
		Password:      pw,
		DB:            fmt.Sprintf("mysql+pymysql://os:%s@%s", pw, cfg.ControllerIP),
		AMQP:          fmt.Sprintf("rabbit://openstack:%s@%s:5672/", pw, cfg.ControllerIP),
		KeystoneURL:   fmt.Sprintf("http://%s:5000/v3", cfg.ControllerIP),
		PublicIP:      n.publicCtl,
		Virt:          h.virt,
		Metadata:      metadataData{Port: metadataPort, Secret: metadataSecret(pw)},
		VMsPerNode:    h.VMsPerNode(),
		CephFSID:      fsid,
		CephOSDBytes:  cephOSDBytes,
		CephPool:      cephPool,
		VolumeBackend: volumeBackend,
	}
	inc, err := fs.ReadFile(data.Local, "local/authtoken.inc")
	if err != nil {
		return err
	}
	render := func(src, dst string, d tmplData) error {
		b, err := fs.ReadFile(data.Local, "local/"+src)
		if err != nil {
			return err
		}
		t, err := template.New(src).Option("missingkey=error").Parse(string(inc))
		if err == nil {
			t, err = t.Parse(string(b))
		}
		if err != nil {
			return fmt.Errorf("template %s: %w", src, err)
		}
		var out bytes.Buffer
		if err := t.Execute(&out, d); err != nil {
			return fmt.Errorf("template %s: %w", src, err)
		}
		p := h.path("etc", dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		return os.WriteFile(p, out.Bytes(), 0o600)
	}
	files := map[string]string{
		"my.cnf": "my.cnf", "rabbitmq-env.conf": "rabbitmq-env.conf", "keystone.conf": "keystone.conf",
		"placement.conf": "placement/placement.conf", "nova.conf": "nova/nova.conf", "neutron.conf": "neutron.conf",
		"ml2_conf.ini": "ml2_conf.ini", "l3_agent.ini": "l3_agent.ini", "dhcp_agent.ini": "dhcp_agent.ini",
		"glance-api.conf": "glance-api.conf", "cinder.conf": "cinder.conf", "octavia.conf": "octavia.conf",
		"sshd_config": "sshd_config", "dnsmasq.conf": "dnsmasq.conf", "ceph.conf": "ceph.conf",
		"metadata_agent.ini": "metadata_agent.ini",
	}
	for src, dst := range files {
		if err := render(src, dst, base); err != nil {
			return err
		}
	}
	for _, node := range []struct {
		nodeData
		ext string
	}{{nodeData{"controller", cfg.ControllerIP, cfg.FailureDomain}, n.extCtl}, {nodeData{"worker", cfg.WorkerIP, cfg.FailureDomainAlt}, n.extWorker}} {
		d := base
		d.Node, d.ExternalInterface = node.nodeData, node.ext
		if err := render("node.conf", "node-"+node.Name+".conf", d); err != nil {
			return err
		}
		if err := render("linuxbridge_agent.ini", "linuxbridge-"+node.Name+".ini", d); err != nil {
			return err
		}
	}
	for _, app := range h.apps(cfg) {
		d := base
		d.App = app
		if err := render("uwsgi.ini", "uwsgi-"+app.Name+".ini", d); err != nil {
			return err
		}
	}
	// nova-api reads api-paste.ini from its configuration directory.
	paste, err := os.ReadFile("/etc/nova/api-paste.ini")
	if err != nil {
		return fmt.Errorf("nova-api: %w (is nova-api installed?)", err)
	}
	if err := os.WriteFile(h.path("etc", "nova", "api-paste.ini"), paste, 0o600); err != nil {
		return err
	}
	for _, s := range []string{"register.py", "seed.py", "register-worker.py"} {
		b, err := fs.ReadFile(data.Local, "local/"+s)
		if err != nil {
			return err
		}
		if err := os.WriteFile(h.path("etc", s), b, 0o700); err != nil {
			return err
		}
	}
	for _, d := range []string{"nova/tmp", "nova/instances", "neutron/tmp", "glance/images", "glance/tmp", "cinder/tmp", "octavia/tmp", "octavia/certs", "octavia/conf.d", "keystone", "rabbitmq", "logs/rabbitmq", "daemons"} {
		if err := os.MkdirAll(h.path(d), 0o700); err != nil {
			return err
		}
	}
	if h.virt != VirtFake {
		if err := h.writeLibvirtConfigs(); err != nil {
			return err
		}
	}
	if err := h.writeEbtablesFix(); err != nil {
		return err
	}
	return h.octaviaCerts()
}

// octaviaCerts creates the throw-away CA and client certificate octavia's
// noop drivers still read.
func (h *Host) octaviaCerts() error {
	dir := h.path("octavia", "certs")
	if _, err := os.Stat(filepath.Join(dir, "client.pem")); err == nil {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("octavia's CA: generating its key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stackgate octavia ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("octavia's CA: creating its certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("octavia's CA: encoding its key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	for name, b := range map[string][]byte{"ca.pem": certPEM, "ca.key": keyPEM, "client.pem": []byte(strings.Join([]string{string(certPEM), string(keyPEM)}, ""))} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("octavia's CA: %w", err)
		}
	}
	return nil
}
