import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync } from "node:fs";

/** Entries of a directory, or none when it does not exist (yet). */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A file's text, or "" when it cannot be read. */
export function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** A sparse file of `bytes` (0600): it occupies disk only where it is written. */
export function makeSparseFile(path: string, bytes: number): void {
  const fd = openSync(path, "w", 0o600);
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}
