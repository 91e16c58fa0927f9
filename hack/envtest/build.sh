#!/usr/bin/env bash
# Builds the envtest binaries (kube-apiserver and etcd) from the Go module
# proxy into a cache directory and prints that directory, ready to be used as
# KUBEBUILDER_ASSETS:
#
#   export KUBEBUILDER_ASSETS="$(hack/envtest/build.sh)"
#
# The released envtest archives are not needed: the versions are pinned by
# this directory's go.mod (k8s.io/kubernetes and go.etcd.io/etcd/server/v3).
# A complete cache directory is reused as is; delete it to rebuild.
#
# Environment:
#   ENVTEST_K8S_VERSION  Kubernetes version, must match go.mod (default 1.36.3)
#   ENVTEST_CACHE_DIR    cache root (default $XDG_CACHE_HOME or $HOME/.cache, + /stackgate/envtest)
#   GO                   go command (default go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${ENVTEST_K8S_VERSION:-1.36.3}"
go="${GO:-go}"
cache_root="${ENVTEST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stackgate/envtest}"
dir="$cache_root/$version"

log() { echo "envtest: $*" >&2; }

pinned="$(cd "$here" && "$go" list -m -f '{{.Version}}' k8s.io/kubernetes)"
if [ "$pinned" != "v$version" ]; then
	log "ENVTEST_K8S_VERSION=$version but $here/go.mod pins k8s.io/kubernetes $pinned; set ENVTEST_K8S_VERSION=${pinned#v} or update go.mod"
	exit 1
fi

complete() { [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ]; }

if complete; then
	echo "$dir"
	exit 0
fi

mkdir -p "$cache_root"
# One build at a time per cache root; a second caller waits and reuses it.
exec 9>"$cache_root/.lock-$version"
flock 9
if complete; then
	echo "$dir"
	exit 0
fi

# Leftovers of an interrupted build; nobody else builds while we hold the lock.
rm -rf "$cache_root/.build-$version."*
tmp="$(mktemp -d "$cache_root/.build-$version.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

etcd_version="$(cd "$here" && "$go" list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
major="${version%%.*}"
minor="${version#*.}"
minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=v$version -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"

cd "$here"
export CGO_ENABLED=0
start=$SECONDS
log "building etcd $etcd_version into $dir (a few minutes when cold)"
"$go" build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
log "etcd built in $((SECONDS - start))s; building kube-apiserver v$version (several minutes when cold)"
"$go" build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
log "kube-apiserver built; total $((SECONDS - start))s"

mkdir -p "$dir"
mv "$tmp/etcd" "$tmp/kube-apiserver" "$dir/"
echo "$dir"
