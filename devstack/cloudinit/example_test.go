package cloudinit_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/stackgate/stackgate/devstack"
	"github.com/stackgate/stackgate/devstack/cloudinit"
)

func ExampleRender() {
	hostKey, err := cloudinit.NewHostKey()
	if err != nil {
		panic(err)
	}
	pw, err := cloudinit.NewPasswords()
	if err != nil {
		panic(err)
	}
	userKey, err := os.ReadFile("testdata/user_ed25519.pub.fixture")
	if err != nil {
		panic(err)
	}
	userData, err := cloudinit.Render(cloudinit.Input{
		Config:        devstack.DefaultConfig(),
		Role:          cloudinit.Controller,
		User:          "cloud",
		AuthorizedKey: string(userKey),
		HostKey:       hostKey,
		Passwords:     pw,
	})
	if err != nil {
		panic(err)
	}
	// Boot the controller with userData; pin hostKey.AuthorizedKey() in the tunnel.
	fmt.Println(string(bytes.SplitN(userData, []byte("\n"), 2)[0]))
	fmt.Println(strings.HasPrefix(hostKey.AuthorizedKey(), "ssh-ed25519 "))
	// Output:
	// #cloud-config
	// true
}

func ExampleNewWorkerLocalConf() {
	pw, err := cloudinit.NewPasswords()
	if err != nil {
		panic(err)
	}
	lc, err := cloudinit.NewWorkerLocalConf(devstack.DefaultConfig(), pw)
	if err != nil {
		panic(err)
	}
	lc.Branch = "master"
	lc.LibvirtType = "qemu"
	lc.Set(cloudinit.NovaConf, "DEFAULT", "cpu_allocation_ratio", "4.0")
	// String redacts the passwords; Render gives the file DevStack reads.
	for _, line := range strings.Split(lc.String(), "\n") {
		if strings.HasPrefix(line, "ADMIN_PASSWORD") || strings.HasPrefix(line, "SERVICE_HOST") || strings.Contains(line, "cpu_allocation_ratio") {
			fmt.Println(line)
		}
	}
	// Output:
	// SERVICE_HOST=10.0.3.15
	// ADMIN_PASSWORD=<redacted>
	// cpu_allocation_ratio = 4.0
}
