import { createHash } from "node:crypto";
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { BundleRequest } from "../bundle/bundle-resolver.js";
import { ErrorCode, OsnError } from "../common/errors.js";
import { ENV_NAME } from "../common/names.js";
import { parseBytes, parseCpu } from "../config/quantity.js";
import type { Limits } from "../config/schema.js";
import type { DriverSandbox } from "../gen/openshell/compute/v1/compute_driver_pb.js";
import type { SandboxKind } from "../sandbox/types.js";

/** What the driver needs from a gateway's DriverSandbox, validated; pure, unit-tested. */
export interface DriverPlan {
  id: string;
  /** The gateway's name, echoed in every snapshot. */
  gatewayName: string;
  namespace: string;
  workspace: string;
  /** Our sandbox's name (state rows, directories, hostname). */
  sandboxName: string;
  image: string;
  bundle: BundleRequest;
  kind: SandboxKind | undefined;
  limits: Limits;
  /** Template then spec environment, minus the keys the driver owns. */
  userEnv: Record<string, string>;
  labels: Record<string, string>;
  command: string[];
  tty: boolean;
  logLevel: string;
  /** Empty when the gateway mints no tokens (no JWT configured). */
  token: string;
}

export interface PlanDefaults {
  defaultImage: string;
}

const ID = /^[A-Za-z0-9._-]{1,128}$/;
const SANDBOX_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/**
 * C0 controls but tab, newline and carriage return, and DEL: nothing legitimate needs them, and
 * they garble logs and terminals.
 */
const CONTROL = {
  test(s: string): boolean {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return true;
    }
    return false;
  },
};
/** Keys only the driver may set: the supervisor must not be pointed elsewhere by a caller. */
const DRIVER_OWNED = /^OPENSHELL_(SANDBOX_TOKEN|SANDBOX_TOKEN_FILE|GATEWAY_TLS_SERVER_NAME)$/;
const DRIVER_CONFIG_KEYS = ["kind", "pids"] as const;

function invalid(message: string): OsnError {
  return new OsnError(ErrorCode.INVALID_ARGUMENT, message);
}

function unsupported(message: string): OsnError {
  return new OsnError(ErrorCode.UNSUPPORTED, message);
}

/** Our sandbox name for a gateway id: readable when the id allows, a hash when it does not. */
export function sandboxNameFor(id: string): string {
  const direct = `os-${id}`;
  return SANDBOX_NAME.test(direct)
    ? direct
    : `os-${createHash("sha256").update(id).digest("hex").slice(0, 24)}`;
}

export function validateId(id: string): string {
  if (!ID.test(id)) throw invalid(`invalid sandbox id ${JSON.stringify(id)}: use 1-128 of A-Z a-z 0-9 . _ -`);
  return id;
}

/** The id of a Get/Stop/Start/Delete request; the name alone is not enough to find a sandbox. */
export function requestId(req: { sandboxId: string; sandboxName: string }): string {
  if (req.sandboxId === "" && req.sandboxName === "") throw invalid("sandbox_id is required");
  if (req.sandboxId === "") throw invalid("sandbox_id is required (a name alone is ambiguous)");
  return validateId(req.sandboxId);
}

/**
 * Everything ValidateSandboxCreate checks, so CreateSandbox has nothing left to refuse:
 * malformed input is INVALID_ARGUMENT, what this driver cannot do is FAILED_PRECONDITION.
 */
export function planFromDriverSandbox(
  sandbox: DriverSandbox | undefined,
  defaults: PlanDefaults,
): DriverPlan {
  if (!sandbox) throw invalid("sandbox is required");
  const id = validateId(sandbox.id);
  const spec = sandbox.spec;
  if (!spec) throw invalid("sandbox.spec is required");
  const template = spec.template;
  if (!template) throw invalid("sandbox.spec.template is required");
  const gatewayName = sandbox.name || id;
  if (gatewayName.length > 253 || CONTROL.test(gatewayName) || /\s/.test(gatewayName))
    throw invalid(`invalid sandbox name ${JSON.stringify(gatewayName)}`);
  for (const [what, value] of [
    ["namespace", sandbox.namespace],
    ["workspace", sandbox.workspace],
    ["log_level", spec.logLevel],
  ] as const) {
    if (value.length > 253 || CONTROL.test(value)) throw invalid(`invalid ${what} ${JSON.stringify(value)}`);
  }

  if (spec.resourceRequirements?.gpu) throw unsupported("GPUs are not supported by the nix driver");
  if (template.agentSocketPath !== "") throw unsupported("template.agent_socket_path is not supported");
  if (template.platformConfig && Object.keys(template.platformConfig).length > 0)
    throw unsupported(
      `template.platform_config is not supported (got ${Object.keys(template.platformConfig).join(", ")})`,
    );

  const image = template.image === "" ? defaults.defaultImage : template.image;
  const driverConfig = parseDriverConfig(template.driverConfig);
  const limits: Limits = {};
  const res = template.resources;
  const cpu = res?.cpuLimit || res?.cpuRequest;
  if (cpu) limits.cpus = parseCpu(cpu, "cpu quantity");
  const memory = res?.memoryLimit || res?.memoryRequest;
  if (memory) limits.memory = parseBytes(memory, "memory quantity");
  if (driverConfig.pids !== undefined) limits.pids = driverConfig.pids;

  const userEnv: Record<string, string> = {};
  for (const [k, v] of [...Object.entries(template.environment), ...Object.entries(spec.environment)]) {
    if (!ENV_NAME.test(k)) throw invalid(`invalid environment variable name ${JSON.stringify(k)}`);
    if (v.includes("\0") || CONTROL.test(v))
      throw invalid(`environment variable ${k} contains control characters`);
    if (!DRIVER_OWNED.test(k)) userEnv[k] = v;
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(template.labels)) {
    if (k === "" || k.length > 317 || CONTROL.test(k) || CONTROL.test(v) || v.length > 1024)
      throw invalid(`invalid label ${JSON.stringify(k)}`);
    labels[k] = v;
  }
  if (spec.command.some((a) => a.includes("\0")))
    throw invalid("command arguments must not contain NUL bytes");

  return {
    id,
    gatewayName,
    namespace: sandbox.namespace,
    workspace: sandbox.workspace,
    sandboxName: sandboxNameFor(id),
    image,
    bundle: bundleRequest(image),
    kind: driverConfig.kind,
    limits,
    userEnv,
    labels,
    command: spec.command,
    tty: spec.tty,
    logLevel: spec.logLevel,
    token: spec.sandboxToken,
  };
}

/** `nix:<bundle>`, `<bundle>` or a store path (OpenShell's image field is an opaque string). */
export function bundleRequest(image: string): BundleRequest {
  if (image.length > 1024 || CONTROL.test(image)) throw invalid("invalid template.image");
  if (image.startsWith("/")) return { storePaths: [image] };
  if (/[/:@]/.test(image.startsWith("nix:") ? image.slice(4) : image))
    throw unsupported(
      `image ${JSON.stringify(image)} is not a Nix bundle: the nix driver runs bundles (nix:<name>) or /nix/store paths, not OCI images`,
    );
  return { bundle: image };
}

interface DriverConfig {
  kind?: SandboxKind;
  pids?: number;
}

/** This driver's block of driver_config (docs/driver.md); unknown keys are refused. */
export function parseDriverConfig(config: JsonObject | undefined): DriverConfig {
  const out: DriverConfig = {};
  for (const [key, value] of Object.entries(config ?? {})) {
    switch (key) {
      case "kind":
        if (value !== "container" && value !== "vm")
          throw invalid(`driver_config.kind must be "container" or "vm", not ${show(value)}`);
        out.kind = value;
        break;
      case "pids":
        if (typeof value !== "number" || !Number.isInteger(value) || value < 8 || value > 4_194_304)
          throw invalid(`driver_config.pids must be an integer from 8 to 4194304, not ${show(value)}`);
        out.pids = value;
        break;
      default:
        throw invalid(
          `unknown driver_config key ${JSON.stringify(key)} (known: ${DRIVER_CONFIG_KEYS.join(", ")})`,
        );
    }
  }
  return out;
}

function show(value: JsonValue): string {
  return JSON.stringify(value) ?? String(value);
}
