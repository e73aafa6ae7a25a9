/** The kinds of sandbox; `vm` arrives with the microVM driver. */
export type SandboxKind = "container" | "vm";

/**
 * Persistent states. `creating` and `removing` are transitions owned by a live process; a row
 * left in one of them by a dead process is finished (or rolled back) by reconcile.
 */
export type SandboxState = "creating" | "created" | "running" | "stopped" | "removing";

export interface ResourceLimits {
  memoryBytes?: number;
  cpus?: number;
  pids?: number;
}

/** A file put into the sandbox's root before its workload starts (the supervisor's token). */
export interface SandboxFile {
  /** Absolute path inside the sandbox, below /etc/openshell or /opt/openshell. */
  path: string;
  mode: number;
  content: string;
}

/**
 * A container's network: `none` is loopback only; `slirp` adds user-mode networking
 * (slirp4netns) through which the sandbox reaches the host as host.openshell.internal. VMs
 * always have slirp networking from qemu.
 */
export type SandboxNetwork = "none" | "slirp";

/** Everything needed to (re)start a sandbox; stored as JSON with the row. */
export interface SandboxSpec {
  /** The workload; empty means the bundle's idle entrypoint (`sleep infinity`). */
  command: string[];
  env: Record<string, string>;
  limits: ResourceLimits;
  /** Top-level store paths of the bundle (their bin directories form PATH). */
  toplevels: string[];
  /** Store path of a shell for /bin/sh, when the bundle has one. */
  shell?: string;
  /** Store path of `env` for /usr/bin/env, when the bundle has one. */
  envTool?: string;
  /** The image the sandbox runs from. */
  imageKey: string;
  /** No workload was given: pid 1 is the idle entrypoint, the sandbox is there for exec. */
  idle?: boolean;
  /** Made by `run`: removed, not kept, when its process dies. */
  ephemeral?: boolean;
  /** Secret-bearing files (a token): never printed by inspect. */
  files?: SandboxFile[];
  network?: SandboxNetwork;
  /**
   * An FHS view of the bundle: /usr/bin/<tool> links into the store for every program in the
   * bundle's bin and sbin, with /bin, /sbin and /usr/sbin pointing at /usr/bin (merged /usr).
   * Software that looks its helpers up at fixed paths (the OpenShell supervisor) needs it.
   */
  links?: [string, string][];
  /**
   * "supervisor": the container keeps what the OpenShell supervisor needs to sandbox its agent
   * (SYS_ADMIN, NET_ADMIN…, namespace and mount syscalls); docs/security.md.
   */
  privileges?: "default" | "supervisor";
  /** The OpenShell gateway's id of the sandbox, when the compute driver made it. */
  managedBy?: string;
}

export interface Sandbox {
  name: string;
  kind: SandboxKind;
  bundle: string;
  imageKey: string;
  spec: SandboxSpec;
  state: SandboxState;
  exitCode: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  monitor: { pid: number; start: string } | null;
  owner: { pid: number; start: string } | null;
}
