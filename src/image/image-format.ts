import { createHash } from "node:crypto";

/**
 * The bundle image format, shared by the runtime builder and (later) the Nix recipe that
 * prebuilds images: both must produce the same tree so a prebuilt image is a cache hit.
 *
 *   /closure         the closure, one store path a line, sorted
 *   /registration    the closure's registration (`nix-store --load-db` format, canonical:
 *                    src/nix/registration.ts), for registering it in a guest's Nix DB
 *   /nix/store/<…>   exactly the closure's store paths
 *
 * Bump FORMAT_VERSION whenever the layout or the mkfs flags change: it is part of every key.
 * nix/bundle-image.nix writes the same format; test/integration/nix-image.test.ts compares them.
 * v2: canonical registration (v1 had `nix-store --dump-db` as it came).
 */
export const FORMAT_VERSION = 2;

export type Compression = "none" | "lz4" | "lz4hc";

/** Fixed UUID and timestamps make the image a pure function of the closure. */
export const IMAGE_UUID = "6f736e78-0000-4000-8000-000000000001";

/** Content address of an image: the closure (which pins the content) and how it is packed. */
export function imageKey(closure: readonly string[], compression: Compression): string {
  const h = createHash("sha256");
  h.update(`openshell-nix-image v${FORMAT_VERSION} ${compression}\n`);
  for (const p of [...closure].sort()) h.update(`${p}\n`);
  return h.digest("hex").slice(0, 32);
}

/** mkfs.erofs argv for a staged tree; pure, unit-tested. */
export function mkfsErofsArgv(output: string, stageDir: string, compression: Compression): string[] {
  // erofs-utils 1.5 (Debian 12) has no -L (label) and only the lz4 compressors.
  const argv = ["mkfs.erofs", "--quiet", "-T0", "--all-root", `-U${IMAGE_UUID}`];
  if (compression !== "none") argv.push(`-z${compression}`);
  argv.push(output, stageDir);
  return argv;
}

/**
 * The staging script, run by `unshare --mount` so every mount it makes dies with it: a tmpfs
 * stage, one read-only bind mount per store path under nix/store (no copy, and it works where
 * /nix/store is a read-only bind mount or another filesystem, as on NixOS), then mkfs.erofs.
 * Arguments: $1 stage dir, $2 dir holding closure+registration, $3… mkfs argv; store paths on stdin.
 */
export const STAGE_SCRIPT = [
  "set -eu",
  "stage=$1; meta=$2; shift 2",
  "mount --make-rprivate /",
  'mount -t tmpfs -o mode=0755 openshell-stage "$stage"',
  'mkdir -p "$stage/nix/store"',
  'cp "$meta/closure" "$meta/registration" "$stage/"',
  // Directories and regular files are bind-mounted; a store path that is a symlink is copied as one.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'while read -r p; do d="$stage/nix/store/${p##*/}"',
  '  if [ -L "$p" ]; then cp -a "$p" "$d"; continue; fi',
  '  if [ -d "$p" ]; then mkdir "$d"; else : > "$d"; fi',
  '  mount --bind -o ro "$p" "$d"',
  "done",
  '"$@"',
].join("\n");
