package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/stackgate/stackgate/tunnel"
)

// Open a tunnel to the controller and use its HTTP client to reach an API on
// the private network.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := os.ReadFile("/path/to/id_ed25519")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	t, err := tunnel.Open(ctx, tunnel.Config{
		Address:    "203.0.113.5:22",
		User:       "stack",
		PrivateKey: key,
		HostKey:    []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ"),
		Routes: []netip.Prefix{
			netip.MustParsePrefix("10.0.3.0/24"),   // private network
			netip.MustParsePrefix("172.24.4.0/24"), // floating IPs
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer t.Close()
	resp, err := t.HTTPClient().Get("http://10.0.3.15/identity/v3")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, len(body))
}
