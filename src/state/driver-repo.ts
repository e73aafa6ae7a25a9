import type { DriverPlan } from "../driver/sandbox-request.js";
import type { Db } from "./db.js";

export type DriverIntent = "running" | "stopped";
/**
 * provisioning: CreateSandbox accepted, the sandbox is being made and started.
 * active: the sandbox exists; its state comes from its own row.
 * failed: provisioning or a later start failed for good (reason, message).
 * deleting: DeleteSandbox is tearing it down.
 */
export type DriverPhase = "provisioning" | "active" | "failed" | "deleting";

export interface DriverRecord {
  id: string;
  sandbox: string;
  gatewayName: string;
  plan: DriverPlan;
  intent: DriverIntent;
  phase: DriverPhase;
  reason: string | null;
  message: string | null;
  changedAt: string;
  createdAt: string;
}

interface Row {
  id: string;
  sandbox: string;
  gateway_name: string;
  plan: string;
  intent: string;
  phase: string;
  reason: string | null;
  message: string | null;
  changed_at: string;
  created_at: string;
}

function toRecord(r: Row): DriverRecord {
  return {
    id: r.id,
    sandbox: r.sandbox,
    gatewayName: r.gateway_name,
    plan: JSON.parse(r.plan) as DriverPlan,
    intent: r.intent as DriverIntent,
    phase: r.phase as DriverPhase,
    reason: r.reason,
    message: r.message,
    changedAt: r.changed_at,
    createdAt: r.created_at,
  };
}

/** The gateway's sandboxes, by id; one statement per write, safe across processes. */
export class DriverRepo {
  constructor(private readonly db: Db) {}

  /** false when the id (or its sandbox name) is taken. */
  insert(plan: DriverPlan): boolean {
    const now = new Date().toISOString();
    const r = this.db
      .prepare(
        `INSERT OR IGNORE INTO driver_sandboxes
           (id, sandbox, gateway_name, plan, intent, phase, changed_at, created_at)
         VALUES (?, ?, ?, ?, 'running', 'provisioning', ?, ?)`,
      )
      .run(plan.id, plan.sandboxName, plan.gatewayName, JSON.stringify(plan), now, now);
    return r.changes === 1;
  }

  get(id: string): DriverRecord | undefined {
    const r = this.db.prepare("SELECT * FROM driver_sandboxes WHERE id = ?").get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  bySandbox(name: string): DriverRecord | undefined {
    const r = this.db.prepare("SELECT * FROM driver_sandboxes WHERE sandbox = ?").get(name) as
      | Row
      | undefined;
    return r ? toRecord(r) : undefined;
  }

  list(): DriverRecord[] {
    return (this.db.prepare("SELECT * FROM driver_sandboxes ORDER BY created_at, id").all() as Row[]).map(
      toRecord,
    );
  }

  setIntent(id: string, intent: DriverIntent): void {
    this.db
      .prepare("UPDATE driver_sandboxes SET intent = ?, changed_at = ? WHERE id = ? AND intent != ?")
      .run(intent, new Date().toISOString(), id, intent);
  }

  setPhase(
    id: string,
    phase: DriverPhase,
    reason: string | null = null,
    message: string | null = null,
  ): void {
    this.db
      .prepare("UPDATE driver_sandboxes SET phase = ?, reason = ?, message = ?, changed_at = ? WHERE id = ?")
      .run(phase, reason, message, new Date().toISOString(), id);
  }

  /** Move from one phase to another only if the record is still in `from`; false otherwise. */
  setPhaseIf(
    id: string,
    from: DriverPhase,
    to: DriverPhase,
    reason: string | null = null,
    message: string | null = null,
  ): boolean {
    const r = this.db
      .prepare(
        "UPDATE driver_sandboxes SET phase = ?, reason = ?, message = ?, changed_at = ? WHERE id = ? AND phase = ?",
      )
      .run(to, reason, message, new Date().toISOString(), id, from);
    return r.changes === 1;
  }

  delete(id: string): void {
    this.db.prepare("DELETE FROM driver_sandboxes WHERE id = ?").run(id);
  }
}
