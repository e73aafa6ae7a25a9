import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ErrorCode, OsnError } from "../common/errors.js";
import { listDir } from "../common/fs.js";
import type { NixStore } from "../nix/nix-store.js";
import { runCommand } from "../process/run-command.js";
import type { Db } from "../state/db.js";
import type { StateLayout } from "../state/layout.js";
import type { Locks } from "../state/locks.js";
import { type Compression, FORMAT_VERSION, imageKey, mkfsErofsArgv, STAGE_SCRIPT } from "./image-format.js";

export interface ImageInfo {
  key: string;
  path: string;
  toplevels: string[];
  closure: string[];
  bytes: number;
  buildMs: number;
  createdAt: string;
}

export interface EnsureResult {
  image: ImageInfo;
  /** True when this call built the image; false for a cache hit (or another process built it). */
  built: boolean;
}

export type ProgressFn = (message: string) => void;

interface ImageRow {
  key: string;
  toplevels: string;
  closure: string;
  bytes: number;
  build_ms: number;
  created_at: string;
}

/**
 * Content-addressed bundle images under <state>/images. An image is written to a temporary file
 * and renamed into place only when mkfs.erofs has finished, so a crash never leaves a half
 * image under the final name. Builds of the same key coalesce: within a process through a
 * shared promise, across processes through a named lock (the second waits, then finds a hit).
 */
export class ImageCache {
  private readonly inflight = new Map<string, Promise<EnsureResult>>();

  constructor(
    private readonly db: Db,
    private readonly layout: StateLayout,
    private readonly locks: Locks,
    private readonly nix: NixStore,
    private readonly compression: Compression = "lz4",
    /** Images prebuilt by Nix (nix/bundle-image.nix outputs), adopted when a key matches. */
    private readonly prebuilt: readonly string[] = [],
  ) {}

  private prebuiltIndex: Map<string, string> | undefined;

  /** key → image.erofs of the prebuilt images of this format and compression; read once. */
  private prebuiltImage(key: string): string | undefined {
    if (!this.prebuiltIndex) {
      this.prebuiltIndex = new Map();
      for (const dir of this.prebuilt) {
        try {
          const meta = JSON.parse(readFileSync(join(dir, "image.json"), "utf8")) as {
            formatVersion?: number;
            compression?: string;
            key?: string;
          };
          if (meta.formatVersion === FORMAT_VERSION && meta.compression === this.compression && meta.key)
            this.prebuiltIndex.set(meta.key, join(dir, "image.erofs"));
        } catch {
          // Not there (collected, or a path from another host): the image is built as usual.
        }
      }
    }
    return this.prebuiltIndex.get(key);
  }

  /** The image for these top-level store paths, building it if needed. */
  async ensure(toplevels: readonly string[], progress: ProgressFn = () => {}): Promise<EnsureResult> {
    const tops = [...new Set(toplevels)].sort();
    const hit = this.lookupByToplevels(tops);
    if (hit) return { image: hit, built: false };
    const closure = await this.nix.closure(tops);
    const key = imageKey(closure, this.compression);
    const joined = this.inflight.get(key);
    const pending =
      joined ??
      this.locks
        .with(`image:${key}`, () => this.buildLocked(key, tops, closure, progress), 30 * 60_000)
        .finally(() => this.inflight.delete(key));
    if (!joined) this.inflight.set(key, pending);
    // A request that joined another's build did not build anything itself.
    const result = joined ? { ...(await pending), built: false } : await pending;
    this.db
      .prepare("INSERT OR REPLACE INTO toplevel_sets (toplevels, image_key) VALUES (?, ?)")
      .run(JSON.stringify(tops), key);
    return result;
  }

  get(key: string): ImageInfo | undefined {
    const row = this.db.prepare("SELECT * FROM images WHERE key = ?").get(key) as ImageRow | undefined;
    return row ? this.toInfo(row) : undefined;
  }

  list(): ImageInfo[] {
    const rows = this.db.prepare("SELECT * FROM images ORDER BY created_at").all() as ImageRow[];
    return rows.map((r) => this.toInfo(r));
  }

  /** Remove an image, its GC roots and its cache entries. The caller checks it is unused. */
  async remove(key: string): Promise<void> {
    await rm(this.layout.image(key), { force: true });
    rmSync(join(this.layout.gcrootsDir, key), { recursive: true, force: true });
    this.db.transaction(() => {
      this.db.prepare("DELETE FROM toplevel_sets WHERE image_key = ?").run(key);
      this.db.prepare("DELETE FROM images WHERE key = ?").run(key);
    })();
  }

  /**
   * What a build that crashed can leave without a row: GC roots registered before mkfs (they
   * would keep their store paths from `nix-store --gc` forever) and an image renamed into place
   * just before the crash. Builds in progress hold their lock and are left alone.
   */
  removeOrphans(): string[] {
    const actions: string[] = [];
    const unfinished = (key: string) => !this.get(key) && !this.locks.isHeld(`image:${key}`);
    for (const key of listDir(this.layout.gcrootsDir).filter((e) => KEY.test(e))) {
      if (!unfinished(key)) continue;
      rmSync(join(this.layout.gcrootsDir, key), { recursive: true, force: true });
      actions.push(`removed GC roots of unfinished image ${key.slice(0, 12)}`);
    }
    for (const file of listDir(this.layout.imagesDir).filter((e) => /^[0-9a-f]{32}\.erofs$/.test(e))) {
      const key = file.slice(0, 32);
      if (!unfinished(key)) continue;
      rmSync(join(this.layout.imagesDir, file), { force: true });
      actions.push(`removed unrecorded image ${key.slice(0, 12)}`);
    }
    return actions;
  }

  /**
   * Use an image Nix built (same format, same key) instead of building one: a symlink under
   * images/ and a GC root for it, so it stays while a sandbox might use it even after the
   * configuration that named it changed.
   */
  private async adopt(
    key: string,
    tops: string[],
    closure: string[],
    file: string,
    progress: ProgressFn,
  ): Promise<EnsureResult> {
    const roots = join(this.layout.gcrootsDir, key);
    mkdirSync(roots, { recursive: true });
    await this.nix.addRoot(join(roots, "image"), dirname(file));
    mkdirSync(this.layout.imagesDir, { recursive: true });
    rmSync(this.layout.image(key), { force: true });
    symlinkSync(file, this.layout.image(key));
    const bytes = (await stat(file)).size;
    const createdAt = new Date().toISOString();
    this.db
      .prepare(
        "INSERT OR REPLACE INTO images (key, toplevels, closure, bytes, build_ms, created_at) VALUES (?, ?, ?, ?, 0, ?)",
      )
      .run(key, JSON.stringify(tops), JSON.stringify(closure), bytes, createdAt);
    progress(`using image ${key.slice(0, 12)} prebuilt by Nix (${dirname(file)})`);
    return {
      image: { key, path: this.layout.image(key), toplevels: tops, closure, bytes, buildMs: 0, createdAt },
      built: false,
    };
  }

  private lookupByToplevels(tops: readonly string[]): ImageInfo | undefined {
    const row = this.db
      .prepare("SELECT i.* FROM toplevel_sets t JOIN images i ON i.key = t.image_key WHERE t.toplevels = ?")
      .get(JSON.stringify(tops)) as ImageRow | undefined;
    if (!row) return undefined;
    const info = this.toInfo(row);
    // A hit must still be usable: the file is there and the store paths were not collected
    // (our GC roots prevent that, unless someone removed them by hand).
    try {
      statSync(info.path);
      for (const p of tops) statSync(p);
    } catch {
      return undefined;
    }
    return info;
  }

  private async buildLocked(
    key: string,
    tops: string[],
    closure: string[],
    progress: ProgressFn,
  ): Promise<EnsureResult> {
    const existing = this.get(key);
    if (existing && (await exists(existing.path))) return { image: existing, built: false };
    const prebuilt = this.prebuiltImage(key);
    if (prebuilt && (await exists(prebuilt))) return this.adopt(key, tops, closure, prebuilt, progress);
    const started = performance.now();
    progress(`building image ${key.slice(0, 12)} (${closure.length} store paths)`);
    const roots = join(this.layout.gcrootsDir, key);
    mkdirSync(roots, { recursive: true });
    mkdirSync(this.layout.imagesDir, { recursive: true });
    const work = join(this.layout.tmpDir, `image-${key}-${process.pid}`);
    mkdirSync(join(work, "stage"), { recursive: true });
    const tmpImage = `${this.layout.image(key)}.tmp-${process.pid}`;
    try {
      // Roots first: from here on a concurrent `nix-store --gc` cannot take the closure away.
      const [registration] = await Promise.all([
        this.nix.registration(closure),
        ...tops.map((p, i) => this.nix.addRoot(join(roots, String(i)), p)),
      ]);
      writeFileSync(join(work, "closure"), `${closure.join("\n")}\n`);
      writeFileSync(join(work, "registration"), registration);
      await runCommand(
        [
          "unshare",
          "--mount",
          "sh",
          "-c",
          STAGE_SCRIPT,
          "stage",
          join(work, "stage"),
          work,
          ...mkfsErofsArgv(tmpImage, join(work, "stage"), this.compression),
        ],
        { input: `${closure.join("\n")}\n`, errorCode: ErrorCode.IMAGE_BUILD_FAILED },
      );
      // Durable before it is visible: after a power cut the final name never holds a torn image.
      fsyncPath(tmpImage);
      await rename(tmpImage, this.layout.image(key));
      fsyncPath(this.layout.imagesDir);
    } catch (err) {
      await rm(tmpImage, { force: true });
      rmSync(roots, { recursive: true, force: true });
      throw OsnError.from(err, ErrorCode.IMAGE_BUILD_FAILED);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    const bytes = (await stat(this.layout.image(key))).size;
    const buildMs = Math.round(performance.now() - started);
    const createdAt = new Date().toISOString();
    this.db
      .prepare(
        "INSERT OR REPLACE INTO images (key, toplevels, closure, bytes, build_ms, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(key, JSON.stringify(tops), JSON.stringify(closure), bytes, buildMs, createdAt);
    progress(`built image ${key.slice(0, 12)} in ${buildMs} ms`);
    return {
      image: { key, path: this.layout.image(key), toplevels: tops, closure, bytes, buildMs, createdAt },
      built: true,
    };
  }

  private toInfo(row: ImageRow): ImageInfo {
    return {
      key: row.key,
      path: this.layout.image(row.key),
      toplevels: JSON.parse(row.toplevels) as string[],
      closure: JSON.parse(row.closure) as string[],
      bytes: row.bytes,
      buildMs: row.build_ms,
      createdAt: row.created_at,
    };
  }
}

const KEY = /^[0-9a-f]{32}$/;

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export function assertCompression(value: string): Compression {
  if (value === "none" || value === "lz4" || value === "lz4hc") return value;
  throw new OsnError(ErrorCode.INVALID_ARGUMENT, `unknown compression ${value}: use none, lz4 or lz4hc`);
}
