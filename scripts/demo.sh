#!/usr/bin/env bash
# The main job: build the embedded demo bundle into /nix/store if it is missing, run python in a
# container sandbox made from it, print what it printed and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
exec node dist/src/bin/cli.js demo "$@"
