# module.sh: CAPO's module at the pin, with stackgate added, in a temporary
# directory. Sourced (not run) by hack/check-capo-deps.sh and
# hack/capo/check.sh, after `set -euo pipefail`.
#
#   capo_module_copy     downloads sigs.k8s.io/cluster-api-provider-openstack
#                        at $CAPO_VERSION (default the project's pin) from the
#                        Go module proxy and copies it, writable, to a new
#                        temporary directory $work, which is removed on exit,
#                        also on failure or interrupt; sets capo, root, self.
#   capo_add_stackgate   in the current directory (a copy of CAPO's module):
#                        requires stackgate with a replace pointing at this
#                        checkout, and replaces each module both require whose
#                        version in CAPO's go.mod the module proxy does not
#                        serve by stackgate's version, for the module graph only.
# Messages start with $name (default: the script's file name).

GO=${GO:-go}
CAPO_VERSION=${CAPO_VERSION:-v0.14.7}
capo=sigs.k8s.io/cluster-api-provider-openstack

capo_module_copy() {
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  self=$(cd "$root" && $GO list -m)
  local src
  src=$($GO mod download -json "$capo@$CAPO_VERSION" | jq -r .Dir)
  if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
    echo "${name:-${0##*/}}: $capo@$CAPO_VERSION has no module directory; is the module proxy reachable?" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
}

capo_add_stackgate() {
  $GO mod edit -require="$self@v0.0.0" -replace="$self=$root"
  # A version CAPO requires that the module proxy does not serve (CAPO
  # v0.14.7 requires sigs.k8s.io/cluster-api/test v1.12.10) would stop every
  # go command that loads the module graph. CAPO's require line stays as it
  # is; the replace gives the graph stackgate's version instead.
  # Only versions that differ from stackgate's need looking at (stackgate's
  # own are served); one go mod download asks for all of them.
  local ours theirs asked unserved path version capo_version
  ours=$(cd "$root" && $GO mod edit -json | jq -r '.Require[] | .Path + " " + .Version')
  theirs=$($GO mod edit -json | jq -r '.Require[] | .Path + " " + .Version')
  asked=$(join <(sort <<< "$ours") <(sort <<< "$theirs") | awk '$2 != $3 {print $1 "@" $3}')
  [ -n "$asked" ] || return 0
  # shellcheck disable=SC2086 # one argument per module
  unserved=$($GO mod download -json $asked 2>/dev/null | jq -r 'select(.Error != null) | .Path + " " + .Version' || true)
  while read -r path capo_version; do
    [ -n "$path" ] || continue
    version=$(awk -v p="$path" '$1 == p {print $2}' <<< "$ours")
    echo "${name:-${0##*/}}: the module proxy does not serve $path $capo_version, which CAPO requires; the module graph uses $version (stackgate's) instead" >&2
    $GO mod edit -replace="$path@$capo_version=$path@$version"
  done <<< "$unserved"
}
