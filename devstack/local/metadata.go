//go:build linux

package local

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
)

// The metadata service, as DevStack sets it up: a guest asks
// 169.254.169.254:80; the haproxy that neutron's l3 agent runs in the
// network's router namespace (or, on a network without a router, the DHCP
// agent in its namespace) passes the request over a unix socket to
// neutron-metadata-agent on the controller, which adds the instance's id,
// signed with the shared secret, and forwards it to nova's metadata API.

// metadataPort is the port of nova's metadata API on the controller's IP.
const metadataPort = 8775

// metadataData is what the templates see of the metadata service.
type metadataData struct {
	// Port is nova's metadata API's port on the controller's IP.
	Port int
	// Secret is metadata_proxy_shared_secret, the same for nova and
	// neutron's metadata agent (metadataSecret).
	Secret string
}

// metadataApp is nova's metadata API, served by uwsgi as nova-api is: in
// single-threaded processes.
func (h *Host) metadataApp() wsgiApp {
	return wsgiApp{Name: "nova-api-metadata", Port: metadataPort, File: "/usr/bin/nova-metadata-wsgi", Processes: 2, Threads: 1,
		Env: []string{"OS_NOVA_CONFIG_DIR=" + filepath.Join(h.path("etc"), "nova")}}
}

// metadataServices are the controller's processes of the metadata
// service. The agent is a neutron agent: it starts once neutron-server
// answers.
func (h *Host) metadataServices() []service {
	c := h.names().controller
	return []service{
		{name: "nova-api-metadata", ns: c, args: []string{"uwsgi", "--ini", h.etc("uwsgi-nova-api-metadata.ini")}},
		{name: "metadata-agent", ns: c, neutronAgent: true, args: []string{"neutron-metadata-agent",
			"--config-file", h.etc("neutron.conf"), "--config-file", h.etc("metadata_agent.ini"), "--config-file", h.etc("node-controller.conf")}},
	}
}

// metadataSecret derives from the instance's password the secret that
// neutron's metadata agent signs instance ids with and nova's metadata API
// checks (metadata_proxy_shared_secret). It is written only to the 0600
// configuration files.
func metadataSecret(password string) string {
	mac := hmac.New(sha256.New, []byte(password))
	mac.Write([]byte("stackgate: metadata_proxy_shared_secret"))
	return hex.EncodeToString(mac.Sum(nil))
}
