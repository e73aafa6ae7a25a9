#!/usr/bin/env bash
# Install what openshell-nix needs on a Debian 12 host (as root) and build it. Idempotent: a
# second run installs nothing and only rebuilds when the sources changed.
#   EXTRA_PACKAGES="podman runc" scripts/setup-debian.sh   # also what bench/ compares against
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (sandboxes need mounts, loop devices and crun)" >&2
  exit 1
fi

# The host tools a sandbox uses, and the Debian binaries the embedded demo bundle is made of.
# nix-setup-systemd creates the nixbld build users (without them builds run as root).
# qemu, the Debian kernel (guest), xz (to unpack it) and e2fsprogs (VM disks) are for VM sandboxes;
# slirp4netns gives container sandboxes of the OpenShell driver a route to the gateway.
# python3 (python3-minimal: the /usr/bin/python3 link) runs nix/bundle-image.nix in its CI test.
packages=(nix-bin nix-setup-systemd erofs-utils crun util-linux mount patchelf busybox-static python3.11
  python3-minimal qemu-system-x86 linux-image-amd64 xz-utils e2fsprogs slirp4netns ${EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A single-user store owned by root; nix-build creates the rest on first use.
[ -d /nix/store ] || nix-store --init

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
