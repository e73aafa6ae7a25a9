import type { Readable } from "node:stream";
import type { ProcessRef } from "../host/proc.js";
import type { ImageInfo } from "../image/image-cache.js";
import type { Sandbox, SandboxKind } from "./types.js";

/** A workload attached to the caller: its output streams and its exit status. */
export interface AttachedProcess {
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit status (128+n for a signal). */
  exit: Promise<number>;
  /** Forward a signal to the workload. */
  kill(signal?: NodeJS.Signals): void;
  /** The process that runs the workload on the host, for stop and status. */
  monitor?: ProcessRef;
}

export interface ExecIo {
  /** "inherit" wires the caller's stdio straight through (the CLI); "pipe" gives streams. */
  stdio: "inherit" | "pipe";
}

/** What a driver reports about a sandbox's workload right now. */
export type RuntimeStatus = { running: true } | { running: false; exitCode: number | null };

/**
 * The role every sandbox technology plays (crun containers now, microVMs next). The service
 * owns names, state and images; a driver owns the host resources of one sandbox and must make
 * `remove` undo everything `prepare` and `start` made, even after a crash.
 */
export interface SandboxDriver {
  readonly kind: SandboxKind;

  /** Lay out the sandbox's private resources (dirs, runtime config); nothing runs yet. */
  prepare(sandbox: Sandbox, image: ImageInfo): Promise<void>;

  /**
   * Start detached: the workload outlives the caller; returns the monitoring process, also
   * handed to `onSpawned` as soon as it exists. On failure nothing of the start is left running.
   */
  start(sandbox: Sandbox, onSpawned?: (monitor: ProcessRef) => void): Promise<ProcessRef>;

  /** Start attached to the caller's streams (used by `run`); logs are still kept. */
  startAttached(sandbox: Sandbox, stdin?: "inherit" | "ignore"): Promise<AttachedProcess>;

  /** Stop the workload: SIGTERM, then SIGKILL after `graceMs`. Keeps the writable layer. */
  stop(sandbox: Sandbox, graceMs: number): Promise<void>;

  /** Run a command in a running sandbox; resolves with its exit status. */
  exec(sandbox: Sandbox, argv: string[], io: ExecIo): Promise<AttachedProcess | number>;

  /** Whether the workload runs, and its exit status once it has ended. */
  status(sandbox: Sandbox): RuntimeStatus;

  /** Remove every host resource of the sandbox. Idempotent. */
  remove(sandbox: Sandbox): Promise<void>;

  /** A short note for `ls`/`inspect` (a VM's accelerator), when the technology has one. */
  describe?(sandbox: Sandbox): string | undefined;

  /** Log files of the sandbox. */
  logPaths(sandbox: Sandbox): { stdout: string; stderr: string };

  /** Reconcile: host resources this driver finds that belong to no known sandbox. */
  cleanOrphans(isKnown: (name: string) => boolean): Promise<string[]>;
}
