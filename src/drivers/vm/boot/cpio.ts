/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs. A few dozen lines
 * are enough, and owning them makes the archive a pure function of its entries (fixed mtimes,
 * owners and inode numbers), so initramfs images are reproducible and cacheable by hash.
 */

export type CpioEntry =
  | { path: string; type: "dir"; mode?: number }
  | { path: string; type: "file"; mode?: number; data: Buffer }
  | { path: string; type: "symlink"; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(ino: number, mode: number, nlink: number, name: string, body: Buffer): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const header = Buffer.from(
    [
      "070701",
      hex8(ino),
      hex8(mode),
      hex8(0), // uid
      hex8(0), // gid
      hex8(nlink),
      hex8(0), // mtime
      hex8(body.length),
      hex8(0), // devmajor
      hex8(0), // devminor
      hex8(0), // rdevmajor
      hex8(0), // rdevminor
      hex8(nameBytes.length),
      hex8(0), // check
    ].join(""),
  );
  const head = Buffer.concat([header, nameBytes]);
  return [head, pad4(head.length), body, pad4(body.length)];
}

/** Serialise entries (parents before children) into a newc archive with its trailer. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    if (e.type === "dir") parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), 2, name, Buffer.alloc(0)));
    else if (e.type === "file") parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), 1, name, e.data));
    else parts.push(...record(ino++, S_IFLNK | 0o777, 1, name, Buffer.from(e.target)));
  }
  parts.push(...record(0, 0, 1, "TRAILER!!!", Buffer.alloc(0)));
  return Buffer.concat(parts);
}
