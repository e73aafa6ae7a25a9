import { readFileSync } from "node:fs";
import { runCommand, runCommandStatus } from "../process/run-command.js";

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  options: string;
  superOptions: string;
}

/** Mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const l = left.split(" ");
    const r = right.split(" ");
    entries.push({
      mountpoint: unescapeOctal(l[4] ?? ""),
      options: l[5] ?? "",
      fstype: r[0] ?? "",
      source: unescapeOctal(r[1] ?? ""),
      superOptions: r[2] ?? "",
    });
  }
  return entries;
}

export function readMounts(): MountEntry[] {
  return parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
}

export function isMountpoint(path: string, mounts: MountEntry[] = readMounts()): boolean {
  return mounts.some((m) => m.mountpoint === path);
}

/** Mount an erofs image read-only through a read-only loop device (the image file is never written). */
export async function mountErofs(image: string, mountpoint: string): Promise<void> {
  await runCommand(["mount", "-t", "erofs", "-o", "ro,loop", image, mountpoint]);
}

/**
 * Unmount and, for loop mounts, let the kernel free the loop device (mount -o loop sets
 * autoclear). A lazy unmount is the fallback so a busy mount never blocks cleanup forever.
 */
export async function unmount(mountpoint: string): Promise<void> {
  const r = await runCommandStatus(["umount", mountpoint]);
  if (r.status !== 0 && isMountpoint(mountpoint)) {
    await runCommand(["umount", "--lazy", mountpoint]);
  }
}

export interface LoopDevice {
  device: string;
  backingFile: string;
}

/** Loop devices currently attached, with their backing files. */
export function listLoopDevices(): LoopDevice[] {
  const out: LoopDevice[] = [];
  let names: string[] = [];
  try {
    names = readFileSync("/proc/partitions", "utf8")
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[3] ?? "")
      .filter((n) => /^loop\d+$/.test(n));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const backing = readFileSync(`/sys/block/${name}/loop/backing_file`, "utf8").trim();
      out.push({ device: `/dev/${name}`, backingFile: backing });
    } catch {
      // not attached
    }
  }
  return out;
}

export async function detachLoop(device: string): Promise<void> {
  await runCommandStatus(["losetup", "--detach", device]);
}
