#!/usr/bin/env bash
# The benchmarks, each side by side with its alternatives (installed here if missing):
#   scripts/bench.sh [containers] [--runs N]   ours vs bare crun vs podman
#   scripts/bench.sh vms [--runs N]            ours vs bare qemu vs a QCOW2 template VM
#   scripts/bench.sh driver [--runs N]         create → ready through the OpenShell driver vs API/CLI
set -euo pipefail
cd "$(dirname "$0")/.."
which="containers"
case "${1:-}" in containers | vms | driver) which="$1"; shift ;; esac
case "$which" in
  containers) EXTRA_PACKAGES="podman runc" scripts/setup-debian.sh ;;
  vms) EXTRA_PACKAGES="qemu-utils" scripts/setup-debian.sh ;;
  driver) scripts/setup-debian.sh ;;
esac
exec node "dist/bench/$which.js" "$@"
