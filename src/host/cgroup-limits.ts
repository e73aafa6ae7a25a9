import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type CgroupLayout, cgroupDirs } from "./cgroups.js";
import { readMounts } from "./mounts.js";

export interface ProcessLimits {
  memoryBytes?: number;
  pids?: number;
  /** CPU limit in cores. */
  cpus?: number;
}

const PERIOD_US = 100_000;

/**
 * A cgroup for a host process (a VM's qemu) with memory, pids and cpu limits, made with plain
 * cgroupfs writes on either layout. Returns the cgroup.procs files the process must write its
 * pid to (a wrapper shell does that before it execs qemu, so every thread starts inside).
 */
export function makeCgroup(layout: CgroupLayout, path: string, limits: ProcessLimits): string[] {
  if (layout.mode === "unified") {
    const dir = `/sys/fs/cgroup${path}`;
    enableControllers(dir);
    mkdirSync(dir, { recursive: true });
    if (limits.memoryBytes) writeFileSync(`${dir}/memory.max`, String(limits.memoryBytes));
    if (limits.pids) writeFileSync(`${dir}/pids.max`, String(limits.pids));
    if (limits.cpus) writeFileSync(`${dir}/cpu.max`, `${Math.round(limits.cpus * PERIOD_US)} ${PERIOD_US}`);
    return [`${dir}/cgroup.procs`];
  }
  const files: string[] = [];
  for (const m of readMounts().filter(
    (m) => m.fstype === "cgroup" && m.mountpoint.startsWith("/sys/fs/cgroup/"),
  )) {
    const controllers = m.superOptions.split(",");
    const dir = `${m.mountpoint}${path}`;
    const wanted =
      (controllers.includes("memory") && limits.memoryBytes) ||
      (controllers.includes("pids") && limits.pids) ||
      (controllers.includes("cpu") && limits.cpus);
    if (!wanted) continue;
    mkdirSync(dir, { recursive: true });
    if (controllers.includes("memory") && limits.memoryBytes) {
      writeFileSync(`${dir}/memory.limit_in_bytes`, String(limits.memoryBytes));
    }
    if (controllers.includes("pids") && limits.pids) writeFileSync(`${dir}/pids.max`, String(limits.pids));
    if (controllers.includes("cpu") && limits.cpus) {
      writeFileSync(`${dir}/cpu.cfs_period_us`, String(PERIOD_US));
      writeFileSync(`${dir}/cpu.cfs_quota_us`, String(Math.round(limits.cpus * PERIOD_US)));
    }
    files.push(`${dir}/cgroup.procs`);
  }
  return files;
}

/** cgroup v2 only hands a controller to a child when every ancestor enables it for its children. */
function enableControllers(dir: string): void {
  const chain: string[] = [];
  for (let d = dirname(dir); d.startsWith("/sys/fs/cgroup") && d !== "/sys/fs/cgroup"; d = dirname(d))
    chain.unshift(d);
  for (const d of ["/sys/fs/cgroup", ...chain]) {
    mkdirSync(d, { recursive: true });
    try {
      writeFileSync(`${d}/cgroup.subtree_control`, "+memory +pids +cpu");
    } catch {
      // not delegated to us, or already enabled: the limits below then fail loudly
    }
  }
}

/**
 * Remove the cgroup once its processes are gone. A killed process leaves its cgroup a moment
 * after it is reaped, so busy directories are retried for up to two seconds (then reconcile
 * gets another chance).
 */
export async function removeCgroup(layout: CgroupLayout, path: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (const dir of cgroupDirs(layout, path)) {
    while (existsSync(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        if (Date.now() > deadline) break;
        await sleep(20);
      }
    }
  }
}

/** A shell prefix that moves itself into the cgroups, then runs the rest: sh -c SCRIPT 0 files… -- cmd… */
export function joinCgroupArgv(procsFiles: readonly string[], argv: readonly string[]): string[] {
  if (procsFiles.length === 0) return [...argv];
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
  return ["sh", "-c", script, "join-cgroup", ...procsFiles, "--", ...argv];
}
