import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A process identity that survives pid reuse: the pid plus its start time in clock ticks since
 * boot (field 22 of /proc/<pid>/stat). Rows in the state database store both, so a recycled pid
 * is never mistaken for the process that once had it.
 */
export interface ProcessRef {
  pid: number;
  start: string;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

export function selfRef(): ProcessRef {
  return { pid: process.pid, start: processStartTime(process.pid) ?? "0" };
}

export function refOf(pid: number): ProcessRef | undefined {
  const start = processStartTime(pid);
  return start === undefined ? undefined : { pid, start };
}

/** True when the process that `ref` names is still alive (and is not a zombie). */
export function isAlive(ref: ProcessRef | undefined | null): boolean {
  if (!ref || ref.pid <= 0) return false;
  try {
    const stat = readFileSync(`/proc/${ref.pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[0] !== "Z" && rest[19] === ref.start;
  } catch {
    return false;
  }
}

/** The process group of a process, from /proc/<pid>/stat. */
export function processGroup(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const group = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    return Number.isInteger(group) && group > 0 ? group : undefined;
  } catch {
    return undefined;
  }
}

/** SIGKILL a session leader (a monitor shell) and everything in its process group. */
export function killGroup(ref: ProcessRef): void {
  if (!isAlive(ref)) return;
  try {
    process.kill(-ref.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Wait until the process has ended; false if it still runs after `ms`. */
export async function waitDead(ref: ProcessRef, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(ref)) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  return true;
}

/** SIGKILL every live process whose command line contains `text`, and wait for each to end. */
export async function killMentioning(text: string): Promise<void> {
  for (const ref of processesMentioning(text)) {
    try {
      process.kill(ref.pid, "SIGKILL");
    } catch {
      // gone already
    }
    await waitDead(ref, 5_000);
  }
}

/** Live processes whose command line contains `text` (never this process). */
export function processesMentioning(text: string): ProcessRef[] {
  const found: ProcessRef[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (!cmdline.includes(text)) continue;
    const ref = refOf(Number(entry));
    if (ref) found.push(ref);
  }
  return found;
}
