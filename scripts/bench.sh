#!/usr/bin/env bash
# The container benchmark, side by side with bare crun and podman (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="podman runc" scripts/setup-debian.sh
exec node dist/bench/containers.js "$@"
