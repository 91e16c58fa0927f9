#!/usr/bin/env bash
# Builds the managers of a Cluster API management cluster (Cluster API core,
# kubeadm bootstrap and control plane, CAPO, ORC) at the versions pinned in
# hack/capi/main.go, from the Go module proxy, into a cache directory, and
# prints that directory:
#
#   export STACKGATE_CAPI_DIR="$(hack/capi/build.sh)"
#
# A complete cache directory is reused as is (its name is a hash of this
# directory's sources, so a changed pin builds anew); delete it to rebuild.
#
# Environment:
#   STACKGATE_CAPI_CACHE_DIR  cache root (default $XDG_CACHE_HOME or $HOME/.cache, + /stackgate/capi)
#   GO                        go command (default go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
go="${GO:-go}"
cache_root="${STACKGATE_CAPI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stackgate/capi}"
key="$(cat "$here"/go.mod "$here"/go.sum "$here"/*.go 2>/dev/null | sha256sum | cut -c1-16)"
dir="$cache_root/$key"

complete() { [ -f "$dir/providers.json" ]; }

if complete; then
	echo "$dir"
	exit 0
fi

mkdir -p "$cache_root"
# One build at a time per cache root; a second caller waits and reuses it.
exec 9>"$cache_root/.lock"
flock 9
if complete; then
	echo "$dir"
	exit 0
fi
# Leftovers of an interrupted build; nobody else builds while we hold the lock.
rm -rf "$cache_root/.$key.build-"*
cd "$here"
GOWORK=off "$go" run . -go "$go" -out "$dir"
