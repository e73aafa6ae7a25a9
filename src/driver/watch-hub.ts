/**
 * Fan-out of watch events to every open WatchSandboxes stream. Each subscriber has its own
 * queue, bounded: a stream that stops reading loses its oldest events rather than growing the
 * daemon (the gateway tolerates gaps; its reconcile repairs them, and every reopen replays a
 * full snapshot).
 */
export class WatchHub<T> {
  private readonly subscribers = new Set<Subscriber<T>>();

  constructor(private readonly maxQueued = 10_000) {}

  get size(): number {
    return this.subscribers.size;
  }

  publish(event: T): void {
    for (const s of this.subscribers) s.push(event);
  }

  /**
   * Subscribe before taking the snapshot, so no change between the two is lost (a duplicate
   * is harmless: applying a snapshot twice changes nothing).
   */
  subscribe(signal?: AbortSignal): Subscriber<T> {
    const sub = new Subscriber<T>(this.maxQueued, () => this.subscribers.delete(sub));
    this.subscribers.add(sub);
    if (signal?.aborted) sub.close();
    else signal?.addEventListener("abort", () => sub.close(), { once: true });
    return sub;
  }

  /** End every stream (daemon shutdown). */
  closeAll(): void {
    for (const s of [...this.subscribers]) s.close();
  }
}

export class Subscriber<T> implements AsyncIterable<T> {
  private queue: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly max: number,
    private readonly onClose: () => void,
  ) {}

  push(event: T): void {
    if (this.closed) return;
    this.queue.push(event);
    if (this.queue.length > this.max) this.queue.shift();
    this.wake?.();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      while (true) {
        const next = this.queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      this.close();
    }
  }
}
