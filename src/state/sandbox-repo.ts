import { ErrorCode, OsnError } from "../common/errors.js";
import type { ProcessRef } from "../host/proc.js";
import type { Sandbox, SandboxKind, SandboxSpec, SandboxState } from "../sandbox/types.js";
import type { Db } from "./db.js";

interface Row {
  name: string;
  kind: string;
  bundle: string;
  image_key: string;
  spec: string;
  state: string;
  owner_pid: number | null;
  owner_start: string | null;
  monitor_pid: number | null;
  monitor_start: string | null;
  exit_code: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

function toSandbox(r: Row): Sandbox {
  return {
    name: r.name,
    kind: r.kind as SandboxKind,
    bundle: r.bundle,
    imageKey: r.image_key,
    spec: JSON.parse(r.spec) as SandboxSpec,
    state: r.state as SandboxState,
    exitCode: r.exit_code,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    monitor: r.monitor_pid !== null ? { pid: r.monitor_pid, start: r.monitor_start ?? "" } : null,
    owner: r.owner_pid !== null ? { pid: r.owner_pid, start: r.owner_start ?? "" } : null,
  };
}

/** Sandbox rows; every write is one statement or one transaction, safe across processes. */
export class SandboxRepo {
  constructor(private readonly db: Db) {}

  /** Reserve a name: the row exists before any host resource does. */
  insertCreating(s: Omit<Sandbox, "state" | "exitCode" | "startedAt" | "finishedAt" | "monitor">): void {
    try {
      this.db
        .prepare(
          `INSERT INTO sandboxes (name, kind, bundle, image_key, spec, state, owner_pid, owner_start, created_at)
           VALUES (?, ?, ?, ?, ?, 'creating', ?, ?, ?)`,
        )
        .run(
          s.name,
          s.kind,
          s.bundle,
          s.imageKey,
          JSON.stringify(s.spec),
          s.owner?.pid ?? null,
          s.owner?.start ?? null,
          s.createdAt,
        );
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new OsnError(ErrorCode.ALREADY_EXISTS, `a sandbox named ${s.name} already exists`);
      }
      throw err;
    }
  }

  get(name: string): Sandbox | undefined {
    const row = this.db.prepare("SELECT * FROM sandboxes WHERE name = ?").get(name) as Row | undefined;
    return row ? toSandbox(row) : undefined;
  }

  mustGet(name: string): Sandbox {
    const s = this.get(name);
    if (!s) throw new OsnError(ErrorCode.NOT_FOUND, `no sandbox named ${name}`);
    return s;
  }

  exists(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM sandboxes WHERE name = ?").get(name) !== undefined;
  }

  list(): Sandbox[] {
    return (this.db.prepare("SELECT * FROM sandboxes ORDER BY created_at, name").all() as Row[]).map(
      toSandbox,
    );
  }

  countByImage(key: string): number {
    return (
      this.db.prepare("SELECT count(*) AS n FROM sandboxes WHERE image_key = ?").get(key) as { n: number }
    ).n;
  }

  /** Prepared: ready to start. A `run` sandbox keeps its owner, whose death abandons it. */
  setPrepared(name: string, imageKey: string, spec: SandboxSpec, keepOwner = false): void {
    this.db
      .prepare(
        `UPDATE sandboxes SET state = 'created', image_key = ?, spec = ?,
         owner_pid = CASE WHEN ? THEN owner_pid END, owner_start = CASE WHEN ? THEN owner_start END
         WHERE name = ?`,
      )
      .run(imageKey, JSON.stringify(spec), keepOwner ? 1 : 0, keepOwner ? 1 : 0, name);
  }

  /** Back to a settled state after a failed start. */
  restore(name: string, state: SandboxState, exitCode: number | null): void {
    this.db
      .prepare(
        "UPDATE sandboxes SET state = ?, exit_code = ?, monitor_pid = NULL, monitor_start = NULL WHERE name = ?",
      )
      .run(state, exitCode, name);
  }

  /** Stopped, but only if the row still names `monitor` (a concurrent start may have replaced it). */
  setStoppedIf(name: string, monitor: ProcessRef | null, exitCode: number | null): void {
    this.db
      .prepare(
        `UPDATE sandboxes SET state = 'stopped', monitor_pid = NULL, monitor_start = NULL, exit_code = ?,
         finished_at = COALESCE(finished_at, ?)
         WHERE name = ? AND state = 'running' AND monitor_pid IS ? AND monitor_start IS ?`,
      )
      .run(exitCode, new Date().toISOString(), name, monitor?.pid ?? null, monitor?.start ?? null);
  }

  /**
   * The workload runs, watched by `monitor`. `owner`, for `run` sandboxes, is the process that
   * will remove the sandbox when the workload ends; if it dies first, reconcile removes it.
   */
  setRunning(name: string, monitor: ProcessRef, owner?: ProcessRef): void {
    this.db
      .prepare(
        `UPDATE sandboxes SET state = 'running', monitor_pid = ?, monitor_start = ?, owner_pid = ?, owner_start = ?,
         exit_code = NULL, started_at = ?, finished_at = NULL WHERE name = ?`,
      )
      .run(
        monitor.pid,
        monitor.start,
        owner?.pid ?? null,
        owner?.start ?? null,
        new Date().toISOString(),
        name,
      );
  }

  setStopped(name: string, exitCode: number | null): void {
    this.db
      .prepare(
        `UPDATE sandboxes SET state = 'stopped', monitor_pid = NULL, monitor_start = NULL, exit_code = ?,
         finished_at = COALESCE(finished_at, ?) WHERE name = ?`,
      )
      .run(exitCode, new Date().toISOString(), name);
  }

  setRemoving(name: string, owner: ProcessRef): void {
    this.db
      .prepare("UPDATE sandboxes SET state = 'removing', owner_pid = ?, owner_start = ? WHERE name = ?")
      .run(owner.pid, owner.start, name);
  }

  delete(name: string): void {
    this.db.prepare("DELETE FROM sandboxes WHERE name = ?").run(name);
  }
}
