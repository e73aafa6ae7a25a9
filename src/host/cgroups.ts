import { readFileSync, statfsSync } from "node:fs";
import { readMounts } from "./mounts.js";

const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * unified: cgroup v2 only (NixOS, current distributions).
 * legacy:  cgroup v1 controllers only.
 * hybrid:  v1 controllers plus a v2 tree at /sys/fs/cgroup/unified that itself holds
 *          controllers (these CI machines: hugetlb). crun 1.8 refuses that layout.
 */
export type CgroupMode = "unified" | "legacy" | "hybrid";

export interface CgroupLayout {
  mode: CgroupMode;
  /** Controllers attached to the v2 tree (empty on legacy). */
  v2Controllers: string[];
}

export function detectCgroupLayout(root = "/sys/fs/cgroup"): CgroupLayout {
  if (isCgroup2(root)) return { mode: "unified", v2Controllers: readControllers(root) };
  const unified = `${root}/unified`;
  if (isCgroup2(unified)) {
    const controllers = readControllers(unified);
    return { mode: controllers.length > 0 ? "hybrid" : "legacy", v2Controllers: controllers };
  }
  return { mode: "legacy", v2Controllers: [] };
}

function isCgroup2(path: string): boolean {
  try {
    return statfsSync(path).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

function readControllers(path: string): string[] {
  try {
    return readFileSync(`${path}/cgroup.controllers`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Directories crun creates for a cgroupsPath, one per hierarchy; for cleanup after a kill. On v1
 * every mounted hierarchy counts (crun joins them all), so they are read from mountinfo.
 */
export function cgroupDirs(layout: CgroupLayout, cgroupsPath: string, root = "/sys/fs/cgroup"): string[] {
  if (layout.mode === "unified") return [`${root}${cgroupsPath}`];
  const v1 = readMounts()
    .filter((m) => m.fstype === "cgroup" && m.mountpoint.startsWith(`${root}/`))
    .map((m) => `${m.mountpoint}${cgroupsPath}`);
  const dirs = [...new Set(v1)];
  if (layout.mode === "hybrid") dirs.push(`${root}/unified${cgroupsPath}`);
  return dirs;
}
