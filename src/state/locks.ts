import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, OsnError } from "../common/errors.js";
import { isAlive, selfRef } from "../host/proc.js";
import type { Db } from "./db.js";

/**
 * Named locks shared by every openshell-nix process on the host through the state database.
 * SQLite transactions cannot be held across awaits, so a lock is a row: taken with an
 * INSERT in an immediate transaction, released by deleting it, and taken over when the process
 * that holds it is gone (a crashed CLI never blocks the next one).
 */
export class Locks {
  private readonly me = selfRef();

  constructor(private readonly db: Db) {}

  /** Whether a live process holds the lock right now (no waiting). */
  isHeld(name: string): boolean {
    const row = this.db.prepare("SELECT pid, start FROM locks WHERE name = ?").get(name) as
      | { pid: number; start: string }
      | undefined;
    return row !== undefined && isAlive(row);
  }

  async with<T>(name: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
    const release = await this.acquire(name, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Take the lock; the returned function releases it (once). For holds that outlive a call. */
  async acquire(name: string, timeoutMs = 120_000): Promise<() => void> {
    const token = await this.take(name, timeoutMs);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.db.prepare("DELETE FROM locks WHERE name = ? AND token = ?").run(name, token);
    };
  }

  private async take(name: string, timeoutMs: number): Promise<string> {
    const token = randomUUID();
    const deadline = Date.now() + timeoutMs;
    const tryTake = this.db
      .transaction((): boolean => {
        const row = this.db.prepare("SELECT pid, start FROM locks WHERE name = ?").get(name) as
          | { pid: number; start: string }
          | undefined;
        if (row && isAlive(row)) return false;
        this.db
          .prepare("INSERT OR REPLACE INTO locks (name, token, pid, start) VALUES (?, ?, ?, ?)")
          .run(name, token, this.me.pid, this.me.start);
        return true;
      })
      .immediate.bind(null);
    let wait = 2;
    while (!tryTake()) {
      if (Date.now() > deadline) {
        throw new OsnError(ErrorCode.TIMEOUT, `timed out waiting for lock ${name}`);
      }
      await sleep(wait);
      wait = Math.min(wait * 2, 50);
    }
    return token;
  }
}
