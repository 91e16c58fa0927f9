#!/usr/bin/env bash
# check-capo-deps.sh: adding stackgate to Cluster API Provider OpenStack's module
# at its pinned release changes none of CAPO's require lines (nor its go line).
#
# It copies CAPO's module from the Go module proxy (CAPO_VERSION, default the
# project's pin) to a temporary directory, adds a package there that imports
# stackgate's public packages, requires stackgate with a replace pointing at
# this checkout, runs `go mod tidy` and compares CAPO's require lines before
# and after: only stackgate's own line and new indirect ones may appear.
# The temporary copy is removed on exit, also on failure or interrupt.
set -euo pipefail

GO=${GO:-go}
CAPO_VERSION=${CAPO_VERSION:-v0.14.7}
capo=sigs.k8s.io/cluster-api-provider-openstack
root=$(cd "$(dirname "$0")/.." && pwd)
self=$(cd "$root" && $GO list -m)

src=$($GO mod download -json "$capo@$CAPO_VERSION" | jq -r .Dir)
if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
  echo "check-capo-deps: $capo@$CAPO_VERSION has no module directory; is the module proxy reachable?" >&2
  exit 1
fi
work=$(mktemp -d)
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cp -r "$src/." "$work/"
chmod -R u+w "$work"
cd "$work"

# requires prints the module's require lines as "path version" (with
# " indirect" for indirect ones), sorted, and its go line.
requires() {
  $GO mod edit -json | jq -r '"go " + .Go, (.Require[] | .Path + " " + .Version + (if .Indirect then " indirect" else "" end))' | sort
}
requires > "$work/before.txt"

mkdir -p hack/stackgateimport
cat > hack/stackgateimport/imports.go <<EOF
// Package stackgateimport makes stackgate a dependency of this module.
package stackgateimport

import (
	_ "$self/devstack"
	_ "$self/framework"
	_ "$self/tunnel"
)
EOF
$GO mod edit -require="$self@v0.0.0" -replace="$self=$root"

# A module version CAPO requires that the module proxy does not serve (here
# sigs.k8s.io/cluster-api/test v1.12.10) would stop tidy before it compares
# anything: such a module is replaced by the version stackgate requires, for
# the module graph only. CAPO's require line stays as it is, and is compared.
ours=$(cd "$root" && $GO mod edit -json | jq -r '.Require[] | .Path + " " + .Version')
while read -r path version; do
  capo_version=$(awk -v p="$path" '$1 == p {print $2}' "$work/before.txt")
  [ -n "$capo_version" ] || continue
  if ! $GO mod download -json "$path@$capo_version" 2>/dev/null | jq -e '.Error == null' >/dev/null; then
    echo "check-capo-deps: the module proxy does not serve $path $capo_version, which CAPO requires; the module graph uses $version (stackgate's) instead" >&2
    $GO mod edit -replace="$path@$capo_version=$path@$version"
  fi
done <<< "$ours"
$GO mod tidy
requires > "$work/after.txt"

if ! grep -q "^$self " "$work/after.txt"; then
  echo "check-capo-deps: go mod tidy dropped $self from CAPO's go.mod; the import of its packages did not take" >&2
  exit 1
fi

# Lines only in before: a requirement CAPO had that changed or went.
changed=$(comm -23 "$work/before.txt" "$work/after.txt")
# Lines only in after: allowed are stackgate's and new indirect modules.
added=$(comm -13 "$work/before.txt" "$work/after.txt")
bad_added=""
while read -r path version indirect; do
  [ -z "$path" ] && continue
  [ "$path" = "$self" ] && continue
  if [ "$indirect" = indirect ] && ! grep -q "^$path " "$work/before.txt"; then
    continue
  fi
  bad_added+="$path $version $indirect"$'\n'
done <<< "$added"

if [ -n "$changed" ] || [ -n "$bad_added" ]; then
  echo "check-capo-deps: adding $self to $capo@$CAPO_VERSION changes its go.mod:" >&2
  echo "$changed" | sed '/^$/d; s/^/  - /' >&2
  echo "$bad_added" | sed '/^$/d; s/^/  + /' >&2
  echo "lower the requirements in go.mod to CAPO's versions (or below) and run go mod tidy" >&2
  exit 1
fi
echo "check-capo-deps: $self added to $capo@$CAPO_VERSION: no require line of CAPO's changed; lines added:"
echo "$added" | sed '/^$/d; s/^/  + /'

