import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { type CgroupLayout, cgroupDirs } from "../../src/host/cgroups.js";

/**
 * crun leaves the parents of its cgroups, podman its conmon groups under /libpod_parent. This
 * removes what appeared during the run, in subtrees only this benchmark creates in (rmdir only
 * succeeds for empty groups, so nothing in use can go).
 */
export class CgroupSweeper {
  private readonly tops = new Set<string>(["/libpod_parent"]);
  private readonly before: Set<string>;
  private readonly hadSharedParent: boolean;

  constructor(private readonly layout: CgroupLayout) {
    this.before = new Set(this.tree());
    this.hadSharedParent = cgroupDirs(layout, "/openshell-nix").some((d) => existsSync(d));
  }

  /** A subtree private to this run: the cgroups of one of its state directories. */
  track(path: string): void {
    this.tops.add(path);
  }

  sweep(): number {
    const fresh = this.tree()
      .filter((d) => !this.before.has(d))
      .sort((a, b) => b.length - a.length);
    if (!this.hadSharedParent) fresh.push(...cgroupDirs(this.layout, "/openshell-nix"));
    let removed = 0;
    for (const dir of fresh) {
      try {
        rmdirSync(dir);
        removed++;
      } catch {
        // not empty or already gone: not ours to force
      }
    }
    return removed;
  }

  private tree(): string[] {
    const out: string[] = [];
    const walk = (dir: string): void => {
      out.push(dir);
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    };
    for (const top of this.tops)
      for (const dir of cgroupDirs(this.layout, top)) if (existsSync(dir)) walk(dir);
    return out;
  }
}
