import { ErrorCode, OsnError } from "../common/errors.js";
import type { SandboxFile } from "../sandbox/types.js";
import type { DriverPlan } from "./sandbox-request.js";

/** Where the supervisor finds its token, in both kinds of sandbox (0600, root's). */
export const TOKEN_PATH = "/etc/openshell/auth/sandbox.jwt";
export const SSH_SOCKET_PATH = "/run/openshell/ssh.sock";
export const WORKDIR = "/sandbox";
/** The name a sandbox reaches its host by (VMs: slirp's 10.0.2.2; containers: slirp4netns's). */
export const HOST_ALIAS = "host.openshell.internal";
/** The `sandbox` user and group every root has (/etc/passwd), owner of /sandbox. */
export const SANDBOX_UID = 10001;

export interface SupervisorLaunch {
  command: string[];
  env: Record<string, string>;
  files: SandboxFile[];
}

export interface LaunchContext {
  /** The supervisor binary, a store path inside the sandbox's closure. */
  supervisor: string;
  /** The gateway as the host reaches it. */
  gatewayEndpoint: string;
  defaultLogLevel: string;
}

/**
 * How a sandbox runs the OpenShell supervisor: its argv, the environment it reads and the token
 * file (docs/driver.md, "inside a sandbox"). Pure, unit-tested. The token never enters the
 * environment, where every child process and /proc/<pid>/environ would show it.
 */
export function supervisorLaunch(plan: DriverPlan, ctx: LaunchContext): SupervisorLaunch {
  const mainProcess = {
    version: 1,
    command: plan.command.length > 0 ? plan.command : ["/bin/bash", "-l"],
    tty: plan.command.length > 0 ? plan.tty : true,
  };
  const env: Record<string, string> = {
    HOME: "/root",
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    TERM: "xterm",
    ...plan.userEnv,
    OPENSHELL_ENDPOINT: sandboxEndpoint(ctx.gatewayEndpoint),
    OPENSHELL_SANDBOX_ID: plan.id,
    OPENSHELL_SANDBOX: plan.gatewayName,
    OPENSHELL_SSH_SOCKET_PATH: SSH_SOCKET_PATH,
    OPENSHELL_MAIN_PROCESS_SPEC: JSON.stringify(mainProcess),
    OPENSHELL_LOG_LEVEL: plan.logLevel || ctx.defaultLogLevel,
    OPENSHELL_USER_ENVIRONMENT: JSON.stringify(plan.userEnv),
    // The supervisor's proxy cannot assume transparent DNS/TCP interception here.
    OPENSHELL_NETWORK_RUNTIME_CAPABILITIES: "",
    // An authoritative numeric identity for the agent: the roots have `sandbox` at 10001.
    OPENSHELL_OCI_IMAGE_USER: "",
    OPENSHELL_SANDBOX_UID: String(SANDBOX_UID),
    OPENSHELL_SANDBOX_GID: String(SANDBOX_UID),
  };
  const files: SandboxFile[] = [];
  if (plan.token !== "") {
    env.OPENSHELL_SANDBOX_TOKEN_FILE = TOKEN_PATH;
    files.push({ path: TOKEN_PATH, mode: 0o600, content: `${plan.token}\n` });
  }
  return { command: [ctx.supervisor, "--workdir", WORKDIR], env, files };
}

/**
 * The gateway endpoint as seen from inside a sandbox: a loopback host means the host itself,
 * which a sandbox reaches as host.openshell.internal; any other host is used as it is.
 */
export function sandboxEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new OsnError(
      ErrorCode.CONFIG_INVALID,
      `driver.gatewayEndpoint ${JSON.stringify(endpoint)} is not a URL`,
    );
  }
  // https needs the client TLS files (OPENSHELL_TLS_CA/CERT/KEY) in every sandbox, which this
  // driver does not provide yet: refuse it rather than make sandboxes that cannot connect.
  if (url.protocol !== "http:")
    throw new OsnError(
      ErrorCode.CONFIG_INVALID,
      `driver.gatewayEndpoint must be http:// (TLS to the gateway is not supported yet), not ${url.protocol}`,
    );
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host === "::1" || host === "0.0.0.0" || host === "::" || /^127\./.test(host)) {
    url.hostname = HOST_ALIAS;
  }
  // URL keeps a trailing slash on a bare origin; the supervisor appends its own paths.
  return url.toString().replace(/\/$/, "");
}
