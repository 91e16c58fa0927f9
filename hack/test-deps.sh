#!/usr/bin/env bash
# Installs the Debian packages the test suites use (as root, on Debian 12), and
# only those that are missing: with everything present it runs no apt command.
# The local DevStack installs its own OpenStack packages when it comes up.
#   openssh-server, openssh-client  the tunnel's test bed and the local controller's sshd
#   iproute2, iputils-ping           network namespaces and their checks
#   curl                             curl through the tunnel's SOCKS5 and CONNECT port
#   cloud-init                       schema checks of the rendered user-data
#   sshuttle, iptables               the baseline in make bench-tunnel
#   git, ca-certificates             the module proxy and make lint's file list
#   netcat-openbsd                   OpenSSH's ProxyCommand through the tunnel's SOCKS5 port (nc -X 5)
#   cpio                             reads the guest image's initramfs (GNU cpio, the format's reference)
set -euo pipefail
packages=(openssh-server openssh-client iproute2 iputils-ping curl cloud-init sshuttle
  iptables git ca-certificates cpio netcat-openbsd)
missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing Debian packages: ${missing[*]}; run as root, or apt-get install them" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
