#!/usr/bin/env bash
# Compare upstream OpenShell's compute_driver.proto with the facts pinned in
# proto/upstream-facts.json (the test suite compares our own proto with the same file).
# Run it when moving the pin: a difference lists what upstream changed on the wire.
#
#   scripts/proto-drift.sh /path/to/NVIDIA/OpenShell-checkout
#
# Without a checkout it says so and exits 0: CI has no network to fetch upstream.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-${OPENSHELL_SRC:-}}"
if [ -z "$src" ] || [ ! -f "$src/proto/compute_driver.proto" ]; then
  echo "proto-drift: skipped: give an NVIDIA/OpenShell checkout (argument or OPENSHELL_SRC)"
  exit 0
fi
[ -f dist/src/driver/proto-facts.js ] || npm run build >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node_modules/.bin/buf build "$src/proto" --path "$src/proto/compute_driver.proto" -o "$tmp/set.binpb"
node scripts/proto-facts.mjs "$tmp/set.binpb" compute_driver.proto >"$tmp/upstream.json"
node -e 'console.log(JSON.stringify(require(process.argv[1]).facts, null, 2))' "$PWD/proto/upstream-facts.json" >"$tmp/pinned.json"
echo "upstream: $(git -C "$src" rev-parse HEAD 2>/dev/null || echo "$src")"
echo "pinned:   $(node -p 'require("./proto/upstream-facts.json").upstream.commit')"
if diff -u "$tmp/pinned.json" "$tmp/upstream.json"; then
  echo "proto-drift: no wire-level difference"
else
  echo "proto-drift: upstream differs from the pin (lines with + are upstream's)" >&2
  exit 1
fi
