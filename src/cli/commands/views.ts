import type { Sandbox } from "../../sandbox/types.js";

/** The stable JSON shape of a sandbox for scripts (`ls --json`, `inspect --json`). */
export function sandboxJson(sb: Sandbox): Record<string, unknown> {
  return {
    name: sb.name,
    kind: sb.kind,
    state: sb.state,
    bundle: sb.bundle,
    image: sb.imageKey,
    command: sb.spec.command,
    env: sb.spec.env,
    limits: sb.spec.limits,
    storePaths: sb.spec.toplevels,
    exitCode: sb.exitCode,
    createdAt: sb.createdAt,
    startedAt: sb.startedAt,
    finishedAt: sb.finishedAt,
    pid: sb.monitor?.pid ?? null,
    /** The OpenShell gateway's id when the compute driver made it. */
    gatewayId: sb.spec.managedBy ?? null,
  };
}

export function describeState(sb: Sandbox): string {
  if (sb.state === "stopped" && sb.exitCode !== null) return `stopped (exit ${sb.exitCode})`;
  return sb.state;
}

/** The command for a table cell: store paths shortened to their file name, idle shown as such. */
export function shortCommand(sb: Sandbox, width = 40): string {
  if (sb.spec.idle) return "(idle)";
  const text = sb.spec.command
    .map((a) => a.replace(/^\/nix\/store\/[^/]+\/(?:.*\/)?/, ""))
    .map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a))
    .join(" ");
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}
