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

name=check-capo-deps # in module.sh's messages
# shellcheck source=hack/capo/module.sh
. "$(dirname "$0")/capo/module.sh"
capo_module_copy
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
capo_add_stackgate
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

