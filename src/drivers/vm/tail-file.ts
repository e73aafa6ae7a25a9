import { closeSync, openSync, readSync, statSync } from "node:fs";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Follow a file a VM writes through a virtio-serial port (qemu appends to it) and stream what
 * arrives. Polling at 10 ms is far below a microVM's boot time and needs no inotify support on
 * the state directory's file system.
 */
export class FileTail {
  readonly stream = new PassThrough();
  private offset: number;
  private done = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly path: string,
    fromOffset = 0,
  ) {
    this.offset = fromOffset;
    this.loop = this.run();
  }

  /** Read what is left, then end the stream. */
  async finish(): Promise<void> {
    this.done = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.done) {
      this.drain();
      await sleep(10);
    }
    this.drain();
    this.stream.end();
  }

  private drain(): void {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const fd = openSync(this.path, "r");
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      if (n > 0) this.stream.write(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
