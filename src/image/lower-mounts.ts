import { mkdirSync, realpathSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { listDir } from "../common/fs.js";
import {
  detachLoop,
  isMountpoint,
  listLoopDevices,
  mountErofs,
  readMounts,
  unmount,
} from "../host/mounts.js";
import type { Db } from "../state/db.js";
import type { StateLayout } from "../state/layout.js";
import type { Locks } from "../state/locks.js";

/**
 * One read-only loop mount per image on the host, shared by every container sandbox of that
 * image and reference-counted by rows in `mount_refs` (so the count survives a crash and is
 * repaired by reconcile, unlike a counter). The first holder mounts, the last one unmounts.
 */
export class LowerMounts {
  constructor(
    private readonly db: Db,
    private readonly layout: StateLayout,
    private readonly locks: Locks,
  ) {}

  /** Directory to use as the overlay lower dir (the image's nix/store). */
  lowerDir(key: string): string {
    return join(this.layout.mount(key), "nix", "store");
  }

  async acquire(key: string, holder: string): Promise<string> {
    await this.locks.with(`mount:${key}`, async () => {
      this.db.prepare("INSERT OR IGNORE INTO mount_refs (sandbox, image_key) VALUES (?, ?)").run(holder, key);
      const mountpoint = this.layout.mount(key);
      if (!isMountpoint(mountpoint)) {
        mkdirSync(mountpoint, { recursive: true });
        try {
          await mountErofs(this.layout.image(key), mountpoint);
        } catch (err) {
          this.db.prepare("DELETE FROM mount_refs WHERE sandbox = ? AND image_key = ?").run(holder, key);
          throw err;
        }
      }
    });
    return this.lowerDir(key);
  }

  async release(key: string, holder: string): Promise<void> {
    if (key === "") return;
    await this.locks.with(`mount:${key}`, async () => {
      this.db.prepare("DELETE FROM mount_refs WHERE sandbox = ? AND image_key = ?").run(holder, key);
      const left = this.db.prepare("SELECT count(*) AS n FROM mount_refs WHERE image_key = ?").get(key) as {
        n: number;
      };
      if (left.n === 0) await this.unmountImage(key);
    });
  }

  /** Holders of each image's mount. */
  holders(key: string): string[] {
    return (
      this.db.prepare("SELECT sandbox FROM mount_refs WHERE image_key = ?").all(key) as { sandbox: string }[]
    ).map((r) => r.sandbox);
  }

  /**
   * Reconcile: drop refs of sandboxes that no longer exist, unmount images nobody holds, and
   * detach loop devices backed by our images that have no mount (left by a killed mount).
   */
  async repair(): Promise<string[]> {
    const actions: string[] = [];
    const stale = this.db
      .prepare("SELECT sandbox, image_key FROM mount_refs WHERE sandbox NOT IN (SELECT name FROM sandboxes)")
      .all() as { sandbox: string; image_key: string }[];
    for (const r of stale) {
      this.db
        .prepare("DELETE FROM mount_refs WHERE sandbox = ? AND image_key = ?")
        .run(r.sandbox, r.image_key);
      actions.push(`dropped mount reference of removed sandbox ${r.sandbox}`);
    }
    const mounts = readMounts();
    const prefix = `${this.layout.mountsDir}/`;
    for (const m of mounts.filter((m) => m.mountpoint.startsWith(prefix))) {
      const key = m.mountpoint.slice(prefix.length);
      if (this.holders(key).length > 0) continue;
      await this.locks.with(`mount:${key}`, async () => {
        if (this.holders(key).length === 0) {
          await this.unmountImage(key);
          actions.push(`unmounted unused image ${key.slice(0, 12)}`);
        }
      });
    }
    const mounted = new Set(readMounts().map((m) => m.source));
    const ours = imageFiles(this.layout.imagesDir);
    for (const loop of listLoopDevices()) {
      if (ours.has(loop.backingFile) && !mounted.has(loop.device)) {
        await detachLoop(loop.device);
        actions.push(`detached orphan loop device ${loop.device}`);
      }
    }
    return actions;
  }

  private async unmountImage(key: string): Promise<void> {
    if (!/^[0-9a-f]{32}$/.test(key)) return; // a sandbox that failed before its image was known
    const mountpoint = this.layout.mount(key);
    if (isMountpoint(mountpoint)) await unmount(mountpoint);
    try {
      rmdirSync(mountpoint);
    } catch {
      // already gone, or still busy under a lazy unmount: reconcile tries again
    }
  }
}

/**
 * The files our images are: those under images/, and the targets of its symlinks (images
 * prebuilt by Nix live in the store; a loop device names the resolved file).
 */
export function imageFiles(imagesDir: string): Set<string> {
  const files = new Set<string>();
  for (const entry of listDir(imagesDir)) {
    const path = join(imagesDir, entry);
    files.add(path);
    try {
      files.add(realpathSync(path));
    } catch {
      // a dangling link: nothing can be backed by it
    }
  }
  return files;
}
