import { createHash } from "node:crypto";
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";

/**
 * sha256 of files, remembered per (path, size, mtime, inode) in a small JSON file, so boot
 * assets can be keyed by the content of their inputs without re-reading a kernel and its
 * modules on every CLI call. A changed file has a new mtime or size and is hashed again.
 */
export class FileDigests {
  private memo: Record<string, string>;
  private dirty = false;

  constructor(private readonly file: string) {
    try {
      this.memo = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
    } catch {
      this.memo = {};
    }
  }

  digest(path: string): string {
    const st = statSync(path);
    const id = `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
    let sum = this.memo[id];
    if (!sum) {
      sum = createHash("sha256").update(readFileSync(path)).digest("hex");
      this.memo[id] = sum;
      this.dirty = true;
    }
    return sum;
  }

  save(): void {
    if (!this.dirty) return;
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.memo));
    renameSync(tmp, this.file);
    this.dirty = false;
  }
}
