import type { Command } from "commander";
import { ErrorCode, OsnError } from "../common/errors.js";
import type { CreateRequest } from "../sandbox/sandbox-service.js";

export interface SandboxFlags {
  bundle?: string;
  storePath?: string[];
  name?: string;
  kind?: string;
  memory?: string;
  cpus?: string;
  pids?: string;
  env?: string[];
}

/** Commander's argument parser for a repeatable option: every value, in order. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The flags shared by `run` and `create`. */
export function addSandboxOptions(cmd: Command): Command {
  return cmd
    .option("-b, --bundle <name>", "bundle to run (from the config, or `demo`)")
    .option("-s, --store-path <path>", "ad hoc bundle: a top-level store path (repeatable)", collect)
    .option("-n, --name <name>", "sandbox name (default: generated)")
    .option("-k, --kind <kind>", "sandbox kind: container or vm")
    .option("-m, --memory <bytes>", "memory limit, e.g. 512Mi or 2G")
    .option("-c, --cpus <n>", "CPU limit in cores, e.g. 0.5")
    .option("-p, --pids <n>", "maximum number of processes")
    .option("-e, --env <KEY=VALUE>", "environment variable (repeatable)", collect);
}

function number(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n))
    throw new OsnError(ErrorCode.INVALID_ARGUMENT, `--${flag} needs a number, got ${JSON.stringify(value)}`);
  return n;
}

export function toCreateRequest(flags: SandboxFlags, command: string[]): CreateRequest {
  const env: Record<string, string> = {};
  for (const pair of flags.env ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new OsnError(ErrorCode.INVALID_ARGUMENT, `--env needs KEY=VALUE, got ${JSON.stringify(pair)}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (flags.kind !== undefined && flags.kind !== "container" && flags.kind !== "vm") {
    throw new OsnError(ErrorCode.INVALID_ARGUMENT, `unknown sandbox kind ${flags.kind}: use container or vm`);
  }
  const limits = {
    memory: flags.memory,
    cpus: number("cpus", flags.cpus),
    pids: number("pids", flags.pids),
  };
  return {
    name: flags.name,
    bundle: flags.bundle,
    storePaths: flags.storePath,
    kind: flags.kind as "container" | "vm" | undefined,
    command,
    env,
    limits: Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
  };
}
