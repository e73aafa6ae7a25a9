import { rmSync } from "node:fs";
import { readMounts, unmount } from "../../src/host/mounts.js";

/** Unmount whatever is still mounted below `dir` (deepest first), then delete it. */
export async function removeTree(dir: string): Promise<void> {
  const below = readMounts()
    .filter((m) => m.mountpoint.startsWith(`${dir}/`))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
  for (const m of below) await unmount(m.mountpoint);
  rmSync(dir, { recursive: true, force: true });
}
