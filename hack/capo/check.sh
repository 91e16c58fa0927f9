#!/usr/bin/env bash
# check.sh: Cluster API Provider OpenStack's own test/e2e at its pinned
# release, with stackgate in place of its sshuttle and DevStack plumbing,
# vets and builds; and docs/capo.md shows what it applies.
#
# It copies CAPO's module from the Go module proxy (CAPO_VERSION, default the
# project's pin) to a temporary directory (removed on exit, also on failure or
# interrupt), applies hack/capo/capo-$CAPO_VERSION.patch, requires stackgate
# with a replace pointing at this checkout, runs `go mod tidy`, then
# `go vet -tags e2e ./test/e2e/...` and `go test -c -tags e2e` of every suite
# under test/e2e/suites. Every Go code block of docs/capo.md is preceded by
#   <!-- from hack/capo: PATH -->   (a file of the patched CAPO module) or
#   <!-- from stackgate: PATH -->   (a file of this checkout)
# and must appear in that file as it is.
#
# Builds use -trimpath, so that the Go build cache serves a second run
# although each run's copy has another directory; the test binaries are
# linked without symbols, which halves the time a warm run takes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=check-capo # in module.sh's messages
# shellcheck source=hack/capo/module.sh
. "$here/module.sh"
patchfile="$here/capo-$CAPO_VERSION.patch"
if [ ! -f "$patchfile" ]; then
  echo "check-capo: no patch for CAPO $CAPO_VERSION ($patchfile): write one against that release's test/e2e" >&2
  exit 1
fi
capo_module_copy
cd "$work"

git apply --whitespace=nowarn "$patchfile" || {
  echo "check-capo: $patchfile does not apply to $capo@$CAPO_VERSION" >&2
  exit 1
}
capo_add_stackgate
$GO mod tidy

# Each Go block of the doc must be in the file its marker names.
doc="$root/docs/capo.md"
mkdir "$work/docblocks"
bad=0
awk -v doc="$doc" -v out="$work/docblocks" '
  /^<!-- from (hack\/capo|stackgate): .* -->$/ { src = $3; sub(/:$/, "", src); file = $4; next }
  /^```go$/ {
    if (file == "") { printf "check-capo: %s:%d: a Go block without a <!-- from hack/capo: PATH --> or <!-- from stackgate: PATH --> line before it\n", doc, NR > "/dev/stderr"; bad = 1 }
    n++; blockfile = out "/" n ".txt"; printf "" > blockfile; if (file != "") print NR "\t" src "\t" file "\t" blockfile; inblock = 1; next
  }
  /^```$/ && inblock { close(blockfile); inblock = 0; file = ""; next }
  inblock { print > blockfile; next }
  /[^ ]/ { file = "" }
  END { exit bad }
' "$doc" > "$work/docblocks.tsv" || bad=1
while IFS=$'\t' read -r line src file blockfile; do
  case "$src" in
    hack/capo) path="$work/$file" ;;
    *) path="$root/$file" ;;
  esac
  if [ ! -f "$path" ]; then
    echo "check-capo: $doc:$line: the block names $file, which does not exist (from $src)" >&2
    bad=1
    continue
  fi
  if ! awk 'FNR == NR { want = want $0 "\n"; next } { have = have $0 "\n" } END { exit index(have, want) ? 0 : 1 }' "$blockfile" "$path"; then
    echo "check-capo: $doc:$line: the Go block is not in $file (from $src) as it stands; copy it from there" >&2
    bad=1
  fi
done < "$work/docblocks.tsv"
[ "$bad" = 0 ] || exit 1

$GO vet -trimpath -tags e2e ./test/e2e/...
# Every suite's test binary, linked in parallel and without symbols (they
# are thrown away), into the temporary directory.
suites=()
for suite in test/e2e/suites/*/; do
  suites+=("./$suite")
done
$GO test -trimpath -c -tags e2e -ldflags='-s -w' -o "$work/bin/" "${suites[@]}"
echo "check-capo: $capo@$CAPO_VERSION test/e2e with $(basename "$patchfile") vets and builds; docs/capo.md's $(wc -l < "$work/docblocks.tsv") Go blocks match"
