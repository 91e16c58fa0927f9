#!/usr/bin/env bash
# Regenerates internal/forked/crypto/ssh: golang.org/x/crypto/ssh at the
# version go.mod requires, import paths rewritten, then the patches in
# internal/forked/crypto/patches applied in order.
#
#   hack/fork-crypto-ssh.sh          rewrite the tree
#   hack/fork-crypto-ssh.sh --check  fail if the tree differs from what it would write
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fork=$root/internal/forked/crypto
module=github.com/stackgate/stackgate/internal/forked/crypto

cd "$root"
version=$(go list -m -f '{{.Version}}' golang.org/x/crypto)
go mod download golang.org/x/crypto
src=$(go list -m -f '{{.Dir}}' golang.org/x/crypto)
[ -d "$src/ssh" ] || { echo "fork-crypto-ssh: golang.org/x/crypto $version not in the module cache ($src)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ssh/internal"
cp "$src"/ssh/*.go "$work/ssh/"
cp -r "$src/ssh/internal/bcrypt_pbkdf" "$work/ssh/internal/"
cp "$src/LICENSE" "$src/PATENTS" "$work/"
chmod -R u+w "$work"
# The fork's own packages by their new path; x/crypto's internal poly1305
# by its public wrapper, which has the same functions.
find "$work/ssh" -name '*.go' -exec sed -i \
	-e "s#\"golang.org/x/crypto/ssh\"#\"$module/ssh\"#" \
	-e "s#\"golang.org/x/crypto/ssh/internal/bcrypt_pbkdf\"#\"$module/ssh/internal/bcrypt_pbkdf\"#" \
	-e 's#"golang.org/x/crypto/internal/poly1305"#"golang.org/x/crypto/poly1305"#' {} +
printf '%s\n' "$version" >"$work/VERSION"
for p in "$fork"/patches/*.patch; do
	[ -e "$p" ] || continue
	(cd "$work" && git apply --whitespace=nowarn "$p") || { echo "fork-crypto-ssh: $(basename "$p") does not apply to x/crypto $version; refresh it" >&2; exit 1; }
done
gofmt -l "$work/ssh" | grep . && { echo "fork-crypto-ssh: the patched files are not gofmt'd" >&2; exit 1; }

if [ "${1:-}" = "--check" ]; then
	for f in LICENSE PATENTS VERSION ssh; do
		if ! diff -r "$work/$f" "$fork/$f" >/dev/null 2>&1; then
			echo "fork-crypto-ssh: internal/forked/crypto/$f is not x/crypto $version plus the patches; run hack/fork-crypto-ssh.sh" >&2
			diff -r "$work/$f" "$fork/$f" | head -40 >&2 || true
			exit 1
		fi
	done
	exit 0
fi
rm -rf "$fork/ssh"
cp -r "$work/ssh" "$work/LICENSE" "$work/PATENTS" "$work/VERSION" "$fork/"
echo "internal/forked/crypto: x/crypto $version ssh with $(ls "$fork"/patches/*.patch 2>/dev/null | wc -l) patches"
