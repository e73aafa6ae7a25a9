#!/usr/bin/env bash
# Evaluate the NixOS module (nix/module.nix) with nixpkgs' lib and compare what it renders with
# the golden file the tests check against the daemon's schema
# (test/fixtures/module-settings.golden.json). Needs a nixpkgs lib: a nixpkgs checkout or the
# nix-community/nixpkgs.lib repository, given by NIXPKGS_LIB (the directory holding lib/).
#
#   NIXPKGS_LIB=~/src/nixpkgs.lib scripts/eval-module.sh            # compare
#   NIXPKGS_LIB=~/src/nixpkgs.lib scripts/eval-module.sh --update   # rewrite the golden file
#
# Without NIXPKGS_LIB it says so and exits 0: CI machines have no nixpkgs.
set -euo pipefail
cd "$(dirname "$0")/.."
golden=test/fixtures/module-settings.golden.json
if [ -z "${NIXPKGS_LIB:-}" ] || [ ! -f "$NIXPKGS_LIB/lib/default.nix" ]; then
  echo "eval-module: skipped: set NIXPKGS_LIB to a nixpkgs (or nixpkgs.lib) checkout holding lib/default.nix"
  exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
nix-instantiate --eval --strict --json nix/tests/eval-module.nix --arg lib "import $NIXPKGS_LIB/lib" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
    if (r.assertionsFailing.length) { console.error("failing assertions:", r.assertionsFailing); process.exit(1); }
    const failed = Object.entries(r.probes).filter(([, ok]) => ok !== true).map(([k]) => k);
    if (failed.length) { console.error("probes that failed:", failed); process.exit(1); }
    process.stdout.write(JSON.stringify(r.settings, null, 2) + "\n");})' >"$out"
if [ "${1:-}" = "--update" ]; then
  cp "$out" "$golden"
  echo "eval-module: wrote $golden"
elif diff -u "$golden" "$out"; then
  echo "eval-module: the module renders $golden ($(git -C "$NIXPKGS_LIB" rev-parse --short HEAD 2>/dev/null || echo "lib at $NIXPKGS_LIB"))"
else
  echo "eval-module: the module's rendering differs from $golden (rerun with --update if intended)" >&2
  exit 1
fi
