import type { Sandbox } from "../sandbox/types.js";
import type { DriverRecord } from "../state/driver-repo.js";

export interface ConditionView {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface StatusView {
  sandboxName: string;
  instanceId: string;
  conditions: ConditionView[];
  deleting: boolean;
}

/**
 * Reasons the gateway reads as "not ready yet" rather than failed (compared case-insensitively
 * upstream); any other reason on Ready=False turns the sandbox into a sticky Error.
 */
export const TRANSIENT_REASONS = [
  "ReconcilerError",
  "DependenciesNotReady",
  "SupervisorNotConnected",
  "Starting",
  "ContainerStarting",
  "ContainerCreated",
  "HealthCheckStarting",
  "InspectFailed",
] as const;

/**
 * The platform status the gateway derives its phase from (docs/driver.md has the table); pure,
 * unit-tested. Ready=True only says the sandbox runs: the gateway shows it Ready once the
 * supervisor inside has connected. A stop reports Suspended=True, which the gateway reads as
 * Stopped, never a terminal reason; a workload that ends without being asked to is an Error.
 */
export function driverStatus(rec: DriverRecord, sb: Sandbox | undefined, detail?: string): StatusView {
  const at = rec.changedAt;
  const ready = (
    status: ConditionView["status"],
    reason: string,
    message: string,
    time = at,
  ): ConditionView => ({
    type: "Ready",
    status,
    reason,
    message,
    lastTransitionTime: time,
  });
  const view = (conditions: ConditionView[], deleting = false): StatusView => ({
    sandboxName: rec.sandbox,
    instanceId: rec.sandbox,
    conditions,
    deleting,
  });
  const stopped = (time: string): StatusView => {
    const msg = "stopped; its files are kept";
    return view([
      ready("False", "ContainerStopped", msg, time),
      {
        type: "Suspended",
        status: "True",
        reason: "ContainerStopped",
        message: msg,
        lastTransitionTime: time,
      },
    ]);
  };
  switch (rec.phase) {
    case "deleting":
      return view([ready("False", "Deleting", "the sandbox is being deleted")], true);
    case "failed":
      return view([ready("False", rec.reason ?? "ProvisioningFailed", rec.message ?? "failed")]);
    case "provisioning":
      return view([ready("False", "Starting", rec.message ?? "provisioning")]);
  }
  if (!sb) {
    return view([ready("False", "SandboxMissing", `sandbox ${rec.sandbox} was removed outside the driver`)]);
  }
  const kind = detail ? `${sb.kind}, ${detail}` : sb.kind;
  switch (sb.state) {
    case "running":
      return view([ready("True", "BackendReady", `running (${kind})`, sb.startedAt ?? at)]);
    case "creating":
      return view([ready("False", "Starting", `${sb.state} (${kind})`)]);
    case "created":
      // Made but never started: stopped before its first start, or about to start.
      if (rec.intent === "stopped") return stopped(at);
      return view([ready("False", "Starting", `${sb.state} (${kind})`)]);
    case "removing":
      return view([ready("False", "Deleting", "the sandbox is being removed")], true);
    case "stopped": {
      const time = sb.finishedAt ?? at;
      if (rec.intent === "stopped") return stopped(time);
      const status = sb.exitCode === null ? "an unknown status" : `status ${sb.exitCode}`;
      return view([ready("False", "ProcessExited", `the supervisor exited with ${status}`, time)]);
    }
  }
}
