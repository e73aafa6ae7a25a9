import { existsSync, readdirSync, readlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";

/** `nix-store --add-root --indirect` links each root from gcroots/auto; drop those pointing into `dir`. */
export function removeAutoRoots(dir: string): number {
  const auto = "/nix/var/nix/gcroots/auto";
  let removed = 0;
  for (const name of existsSync(auto) ? readdirSync(auto) : []) {
    const link = join(auto, name);
    try {
      if (readlinkSync(link).startsWith(`${dir}/`)) {
        unlinkSync(link);
        removed++;
      }
    } catch {
      // not a symlink, or gone meanwhile
    }
  }
  return removed;
}
