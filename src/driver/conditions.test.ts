import { describe, expect, it } from "vitest";
import type { Sandbox, SandboxState } from "../sandbox/types.js";
import type { DriverIntent, DriverPhase, DriverRecord } from "../state/driver-repo.js";
import { type ConditionView, driverStatus, type StatusView, TRANSIENT_REASONS } from "./conditions.js";

const CHANGED_AT = "2024-05-01T10:00:00.000Z";
const STARTED_AT = "2024-05-01T10:00:05.000Z";
const FINISHED_AT = "2024-05-01T10:05:00.000Z";

function record(over: Partial<DriverRecord> = {}): DriverRecord {
  return {
    id: "abc-123",
    sandbox: "osn-abc",
    gatewayName: "my-sandbox",
    plan: {
      id: "abc-123",
      gatewayName: "my-sandbox",
      namespace: "default",
      workspace: "ws",
      sandboxName: "osn-abc",
      image: "nix:demo",
      bundle: { bundle: "demo" },
      kind: undefined,
      limits: {},
      userEnv: {},
      labels: {},
      command: [],
      tty: false,
      logLevel: "info",
      token: "",
    },
    intent: "running",
    phase: "active",
    reason: null,
    message: null,
    changedAt: CHANGED_AT,
    createdAt: CHANGED_AT,
    ...over,
  };
}

function sandbox(over: Partial<Sandbox> = {}): Sandbox {
  return {
    name: "osn-abc",
    kind: "container",
    bundle: "demo",
    imageKey: "k",
    spec: { command: [], env: {}, limits: {}, toplevels: [], imageKey: "k" },
    state: "running",
    exitCode: null,
    createdAt: CHANGED_AT,
    startedAt: STARTED_AT,
    finishedAt: null,
    monitor: null,
    owner: null,
    ...over,
  };
}

function readyOf(v: StatusView): ConditionView {
  const r = v.conditions.find((c) => c.type === "Ready");
  if (!r) throw new Error("no Ready condition");
  return r;
}

function suspendedOf(v: StatusView): ConditionView | undefined {
  return v.conditions.find((c) => c.type === "Suspended");
}

const transient: readonly string[] = TRANSIENT_REASONS;

describe("driverStatus", () => {
  it("names the sandbox after the record's sandbox", () => {
    const v = driverStatus(record({ sandbox: "osn-xyz" }), sandbox({ name: "osn-xyz" }));
    expect(v.sandboxName).toBe("osn-xyz");
    expect(v.instanceId).toBe("osn-xyz");
  });

  it("phase deleting: deleting, Ready False Deleting", () => {
    const v = driverStatus(record({ phase: "deleting" }), sandbox());
    expect(v.deleting).toBe(true);
    expect(v.conditions).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "Deleting",
        message: "the sandbox is being deleted",
        lastTransitionTime: CHANGED_AT,
      },
    ]);
  });

  it("phase failed: Ready False with the record's reason and message", () => {
    const v = driverStatus(
      record({ phase: "failed", reason: "ImagePullFailed", message: "no such bundle" }),
      undefined,
    );
    expect(v.deleting).toBe(false);
    expect(v.conditions).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "ImagePullFailed",
        message: "no such bundle",
        lastTransitionTime: CHANGED_AT,
      },
    ]);
  });

  it("phase failed without reason or message falls back to defaults", () => {
    const r = readyOf(driverStatus(record({ phase: "failed" }), undefined));
    expect(r.reason).toBe("ProvisioningFailed");
    expect(r.message).toBe("failed");
  });

  it("phase provisioning: Ready False Starting, a transient reason", () => {
    const v = driverStatus(record({ phase: "provisioning", message: "building image" }), undefined);
    const r = readyOf(v);
    expect(v.deleting).toBe(false);
    expect(r.status).toBe("False");
    expect(r.reason).toBe("Starting");
    expect(transient).toContain(r.reason);
    expect(r.message).toBe("building image");
    expect(readyOf(driverStatus(record({ phase: "provisioning" }), undefined)).message).toBe("provisioning");
  });

  it("active without a sandbox: SandboxMissing", () => {
    const v = driverStatus(record(), undefined);
    const r = readyOf(v);
    expect(v.deleting).toBe(false);
    expect(r.status).toBe("False");
    expect(r.reason).toBe("SandboxMissing");
    expect(r.message).toContain("osn-abc");
  });

  it("running: Ready True BackendReady with the kind and detail, since startedAt", () => {
    const v = driverStatus(record(), sandbox(), "tcg");
    expect(v.deleting).toBe(false);
    expect(v.conditions).toEqual([
      {
        type: "Ready",
        status: "True",
        reason: "BackendReady",
        message: "running (container, tcg)",
        lastTransitionTime: STARTED_AT,
      },
    ]);
  });

  it("running without detail names only the kind; without startedAt uses changedAt", () => {
    const r = readyOf(driverStatus(record(), sandbox({ kind: "vm", startedAt: null })));
    expect(r.message).toBe("running (vm)");
    expect(r.lastTransitionTime).toBe(CHANGED_AT);
  });

  it.each(["creating", "created"] as const)("%s: Ready False Starting", (state) => {
    const v = driverStatus(record(), sandbox({ state, startedAt: null }));
    const r = readyOf(v);
    expect(v.deleting).toBe(false);
    expect(r.status).toBe("False");
    expect(r.reason).toBe("Starting");
    expect(r.message).toBe(`${state} (container)`);
  });

  it("removing: deleting, Ready False Deleting", () => {
    const v = driverStatus(record(), sandbox({ state: "removing" }));
    expect(v.deleting).toBe(true);
    expect(readyOf(v)).toMatchObject({ status: "False", reason: "Deleting" });
  });

  it("stopped as asked: Ready False ContainerStopped and Suspended True", () => {
    const v = driverStatus(
      record({ intent: "stopped" }),
      sandbox({ state: "stopped", exitCode: 143, finishedAt: FINISHED_AT }),
    );
    expect(v.deleting).toBe(false);
    expect(readyOf(v)).toEqual({
      type: "Ready",
      status: "False",
      reason: "ContainerStopped",
      message: "stopped; its files are kept",
      lastTransitionTime: FINISHED_AT,
    });
    expect(suspendedOf(v)).toEqual({
      type: "Suspended",
      status: "True",
      reason: "ContainerStopped",
      message: "stopped; its files are kept",
      lastTransitionTime: FINISHED_AT,
    });
  });

  it("stopped without being asked: ProcessExited with the exit status, no Suspended", () => {
    const v = driverStatus(
      record({ intent: "running" }),
      sandbox({ state: "stopped", exitCode: 3, finishedAt: FINISHED_AT }),
    );
    const r = readyOf(v);
    expect(v.deleting).toBe(false);
    expect(r.status).toBe("False");
    expect(r.reason).toBe("ProcessExited");
    expect(r.message).toContain("status 3");
    expect(r.lastTransitionTime).toBe(FINISHED_AT);
    expect(suspendedOf(v)).toBeUndefined();
    expect(v.conditions).toHaveLength(1);
  });

  it("stopped without being asked and no exit code: an unknown status", () => {
    const v = driverStatus(record(), sandbox({ state: "stopped", exitCode: null, finishedAt: null }));
    const r = readyOf(v);
    expect(r.message).toContain("an unknown status");
    expect(r.lastTransitionTime).toBe(CHANGED_AT);
  });

  describe("every non-failed, non-exited case reads as transient, stopped or deleting", () => {
    const phases: DriverPhase[] = ["provisioning", "active", "deleting"];
    const intents: DriverIntent[] = ["running", "stopped"];
    const states: (SandboxState | undefined)[] = [
      undefined,
      "creating",
      "created",
      "running",
      "stopped",
      "removing",
    ];
    const cases: [DriverPhase, DriverIntent, SandboxState | undefined][] = [];
    for (const p of phases) for (const i of intents) for (const s of states) cases.push([p, i, s]);

    it.each(cases)("phase %s, intent %s, state %s", (phase, intent, state) => {
      const sb = state === undefined ? undefined : sandbox({ state, exitCode: 1, finishedAt: FINISHED_AT });
      const v = driverStatus(record({ phase, intent }), sb, "detail");
      const r = readyOf(v);
      // The two outcomes that must read as errors: a workload that died on its own, a missing sandbox.
      const exited = phase === "active" && state === "stopped" && intent === "running";
      const missing = phase === "active" && state === undefined;
      if (exited || missing) {
        expect(r.reason).toBe(exited ? "ProcessExited" : "SandboxMissing");
        expect(suspendedOf(v)).toBeUndefined();
        return;
      }
      if (r.status === "True") {
        expect(r.reason).toBe("BackendReady");
        return;
      }
      const ok =
        transient.includes(r.reason) ||
        (r.reason === "ContainerStopped" && suspendedOf(v)?.status === "True") ||
        v.deleting;
      expect(ok, `Ready False reason ${r.reason} would read as a sticky error`).toBe(true);
    });
  });
});
