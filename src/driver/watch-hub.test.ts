import { describe, expect, it } from "vitest";
import { type Subscriber, WatchHub } from "./watch-hub.js";

/** Reads `n` events from a subscriber's iterator (the stream stays open). */
async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/** Everything a subscriber yields until its stream ends. */
async function drain<T>(sub: Subscriber<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of sub) out.push(e);
  return out;
}

describe("WatchHub", () => {
  it("delivers events published after subscribe, in order", async () => {
    const hub = new WatchHub<number>();
    const it = hub.subscribe()[Symbol.asyncIterator]();
    hub.publish(1);
    hub.publish(2);
    hub.publish(3);
    expect(await take(it, 3)).toEqual([1, 2, 3]);
  });

  it("delivers an event published while the reader waits", async () => {
    const hub = new WatchHub<string>();
    const it = hub.subscribe()[Symbol.asyncIterator]();
    const next = it.next();
    hub.publish("late");
    expect(await next).toEqual({ value: "late", done: false });
  });

  it("does not deliver events published before subscribe", async () => {
    const hub = new WatchHub<number>();
    hub.publish(1);
    hub.publish(2);
    const sub = hub.subscribe();
    hub.publish(3);
    sub.close();
    expect(await drain(sub)).toEqual([3]);
  });

  it("fans out to every subscriber", async () => {
    const hub = new WatchHub<number>();
    const a = hub.subscribe();
    const b = hub.subscribe();
    expect(hub.size).toBe(2);
    hub.publish(1);
    hub.publish(2);
    hub.closeAll();
    expect(await drain(a)).toEqual([1, 2]);
    expect(await drain(b)).toEqual([1, 2]);
  });

  it("close() ends the iteration and removes the subscriber", async () => {
    const hub = new WatchHub<number>();
    const sub = hub.subscribe();
    expect(hub.size).toBe(1);
    const done = drain(sub);
    hub.publish(7);
    sub.close();
    expect(await done).toEqual([7]);
    expect(hub.size).toBe(0);
    hub.publish(8);
    expect(await drain(sub)).toEqual([]);
  });

  it("an abort signal ends the iteration and removes the subscriber", async () => {
    const hub = new WatchHub<number>();
    const ac = new AbortController();
    const sub = hub.subscribe(ac.signal);
    const other = hub.subscribe();
    expect(hub.size).toBe(2);
    const done = drain(sub);
    hub.publish(1);
    ac.abort();
    expect(await done).toEqual([1]);
    expect(hub.size).toBe(1);
    other.close();
    expect(hub.size).toBe(0);
  });

  it("breaking out of for await removes the subscriber", async () => {
    const hub = new WatchHub<number>();
    const sub = hub.subscribe();
    hub.publish(1);
    hub.publish(2);
    const seen: number[] = [];
    for await (const e of sub) {
      seen.push(e);
      break;
    }
    expect(seen).toEqual([1]);
    expect(hub.size).toBe(0);
    hub.publish(3);
    expect(await drain(sub)).not.toContain(3);
  });

  it("bounds each queue, dropping the oldest events", async () => {
    const hub = new WatchHub<number>(3);
    const sub = hub.subscribe();
    for (let i = 1; i <= 5; i++) hub.publish(i);
    sub.close();
    expect(await drain(sub)).toEqual([3, 4, 5]);
  });

  it("closeAll ends every stream, even ones waiting for an event", async () => {
    const hub = new WatchHub<number>();
    const streams = [hub.subscribe(), hub.subscribe(), hub.subscribe()].map(drain);
    expect(hub.size).toBe(3);
    hub.closeAll();
    expect(await Promise.all(streams)).toEqual([[], [], []]);
    expect(hub.size).toBe(0);
  });
});
