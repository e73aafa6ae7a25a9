#!/usr/bin/env bash
# All tests: types, lint, unit tests and the integration tests against the real Nix store,
# mkfs.erofs, loop devices, overlayfs and crun.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
exec npm test
