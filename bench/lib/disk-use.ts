import { existsSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../../src/process/run-command.js";

/** Space taken below some paths, measured three ways. */
export interface DiskUse {
  /** Sum of lstat sizes of every entry, directories included (du --apparent-size -b). */
  apparent: number;
  /** The part of `apparent` in regular files and symlinks: what was written, not directory blocks. */
  fileBytes: number;
  /** Allocated blocks (du -sk), in bytes. */
  allocated: number;
}

/** lstat sizes below the given paths, hard links once, without crossing into other filesystems. */
export function walkSizes(paths: readonly string[]): { apparent: number; fileBytes: number } {
  const seen = new Set<string>();
  const sum = { apparent: 0, fileBytes: 0 };
  const visit = (path: string, dev: number): void => {
    const st = lstatSync(path);
    const inode = `${st.dev}:${st.ino}`;
    if (st.dev !== dev || seen.has(inode)) return;
    seen.add(inode);
    sum.apparent += st.size;
    if (!st.isDirectory()) sum.fileBytes += st.size;
    else for (const entry of readdirSync(path)) visit(join(path, entry), dev);
  };
  for (const p of paths) if (existsSync(p)) visit(p, lstatSync(p).dev);
  return sum;
}

async function allocatedBytes(paths: readonly string[]): Promise<number> {
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) return 0;
  const r = await runCommand(["du", "-skxc", ...present]);
  const total = r.stdout.trim().split("\n").pop()?.split(/\s+/)[0];
  return Number(total) * 1024;
}

/** What `paths` take on disk now. */
export async function diskUse(paths: readonly string[]): Promise<DiskUse> {
  return { ...walkSizes(paths), allocated: await allocatedBytes(paths) };
}

/** What grew between two measurements of the same paths. */
export function diskDelta(after: DiskUse, before: DiskUse): DiskUse {
  return {
    apparent: after.apparent - before.apparent,
    fileBytes: after.fileBytes - before.fileBytes,
    allocated: after.allocated - before.allocated,
  };
}
