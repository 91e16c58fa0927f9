package tunnel

import (
	"net/http"
	"time"
)

// Transport returns the tunnel's shared HTTP transport: it dials through
// DialContext, ignores proxy variables and speaks HTTP/2 where offered. Use
// it for gophercloud's ProviderClient.HTTPClient or any net/http user.
// Close closes its idle connections.
func (t *Tunnel) Transport() *http.Transport {
	t.transportOnce.Do(func() {
		tr := &http.Transport{
			Proxy:                 nil,
			DialContext:           t.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			ReadBufferSize:        64 << 10,
			WriteBufferSize:       64 << 10,
		}
		t.mu.Lock()
		t.transport = tr
		t.mu.Unlock()
	})
	return t.transport // Do's return orders this read after the write
}

// HTTPClient returns a client using Transport.
func (t *Tunnel) HTTPClient() *http.Client {
	return &http.Client{Transport: t.Transport()}
}

// Env returns the environment lines that point other processes (kind,
// kubectl, curl, the openstack CLI) at a proxy served by Serve on proxyAddr
// (host:port): HTTP_PROXY and HTTPS_PROXY use HTTP (absolute URLs and
// CONNECT), ALL_PROXY uses SOCKS5 with remote name resolution, NO_PROXY
// keeps loopback local. Each is given in upper and lower case.
func (t *Tunnel) Env(proxyAddr string) []string {
	vars := [][2]string{
		{"HTTP_PROXY", "http://" + proxyAddr},
		{"HTTPS_PROXY", "http://" + proxyAddr},
		{"ALL_PROXY", "socks5h://" + proxyAddr},
		{"NO_PROXY", "localhost,127.0.0.1,::1"},
	}
	var env []string
	for _, v := range vars {
		env = append(env, v[0]+"="+v[1])
	}
	for _, v := range vars {
		env = append(env, lower(v[0])+"="+v[1])
	}
	return env
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
