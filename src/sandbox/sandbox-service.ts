import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BundleRequest, BundleResolver } from "../bundle/bundle-resolver.js";
import { ErrorCode, OsnError } from "../common/errors.js";
import { listDir } from "../common/fs.js";
import { ENV_NAME, generateName, validateName } from "../common/names.js";
import { parseBytes } from "../config/quantity.js";
import type { Config, Limits } from "../config/schema.js";
import { isAlive, selfRef } from "../host/proc.js";
import type { ImageCache, ImageInfo, ProgressFn } from "../image/image-cache.js";
import type { LowerMounts } from "../image/lower-mounts.js";
import { CleanupStack } from "../process/cleanup-stack.js";
import type { StateLayout } from "../state/layout.js";
import type { Locks } from "../state/locks.js";
import type { SandboxRepo } from "../state/sandbox-repo.js";
import type { AttachedProcess, ExecIo, SandboxDriver } from "./driver.js";
import type {
  ResourceLimits,
  Sandbox,
  SandboxFile,
  SandboxKind,
  SandboxNetwork,
  SandboxSpec,
} from "./types.js";

export interface CreateRequest extends BundleRequest {
  name?: string;
  kind?: SandboxKind;
  command?: string[];
  env?: Record<string, string>;
  limits?: Limits;
  /** Remove rather than keep the sandbox if its managing process dies (`run`). */
  ephemeral?: boolean;
  /** Files put into the sandbox before it starts (below /etc/openshell or /opt/openshell). */
  files?: SandboxFile[];
  network?: SandboxNetwork;
  /** Give the sandbox an FHS view of the bundle's programs (SandboxSpec.links). */
  fhs?: boolean;
  /** Store paths added to the bundle's closure (the OpenShell supervisor). */
  extraToplevels?: string[];
  /** The gateway's id, for sandboxes of the compute driver (the CLI leaves them alone). */
  managedBy?: string;
  privileges?: "default" | "supervisor";
}

export interface ServiceDeps {
  config: Config;
  layout: StateLayout;
  locks: Locks;
  repo: SandboxRepo;
  images: ImageCache;
  lowers: LowerMounts;
  bundles: BundleResolver;
  drivers: SandboxDriver[];
}

/**
 * The core every front end calls (the CLI now, the gRPC daemon next): names, state, images and
 * the lifecycle of sandboxes, with the technology behind a SandboxDriver.
 */
export class SandboxService {
  private readonly me = selfRef();

  constructor(private readonly deps: ServiceDeps) {}

  driver(kind: SandboxKind): SandboxDriver {
    const d = this.deps.drivers.find((x) => x.kind === kind);
    if (!d) {
      throw new OsnError(ErrorCode.INVALID_ARGUMENT, `sandbox kind ${kind} is not available yet`, {
        hint: "use --kind container",
      });
    }
    return d;
  }

  /** Create a sandbox: reserve the name, build or reuse the image, prepare the host side. */
  async create(req: CreateRequest, progress: ProgressFn = () => {}): Promise<Sandbox> {
    const name = validateName("sandbox", req.name ?? generateName());
    // Under the sandbox's lock, so a reconcile never takes a fresh create for an abandoned one.
    return this.deps.locks.with(`sandbox:${name}`, () => this.createLocked(name, req, progress), 30 * 60_000);
  }

  private async createLocked(name: string, req: CreateRequest, progress: ProgressFn): Promise<Sandbox> {
    const kind = req.kind ?? this.deps.config.defaultKind ?? "container";
    const driver = this.driver(kind);
    const env = validateEnv(req.env ?? {});
    const command = req.command ?? [];
    if (command.some((a) => a.includes("\0"))) {
      throw new OsnError(ErrorCode.INVALID_ARGUMENT, "command arguments must not contain NUL bytes");
    }
    const files = validateFiles(req.files ?? []);
    const bundle = await this.deps.bundles.resolve(req, progress);
    const toplevels = [...new Set([...bundle.toplevels, ...(req.extraToplevels ?? [])])];
    const limits = resolveLimits(this.deps.config.limits, bundle.config?.limits, req.limits);
    if (this.deps.repo.exists(name))
      throw new OsnError(ErrorCode.ALREADY_EXISTS, `a sandbox named ${name} already exists`);

    const spec: SandboxSpec = {
      command,
      env,
      limits,
      toplevels,
      imageKey: "",
      ephemeral: req.ephemeral === true,
      ...(files.length > 0 ? { files } : {}),
      ...(req.network && req.network !== "none" ? { network: req.network } : {}),
      ...(req.fhs ? { links: [] } : {}),
      ...(req.managedBy ? { managedBy: req.managedBy } : {}),
      ...(req.privileges === "supervisor" ? { privileges: req.privileges } : {}),
    };
    this.deps.repo.insertCreating({
      name,
      kind,
      bundle: bundle.name,
      imageKey: "",
      spec,
      createdAt: new Date().toISOString(),
      owner: this.me,
    });
    const undo = new CleanupStack();
    undo.push("row", () => this.deps.repo.delete(name));
    try {
      const { image } = await this.deps.images.ensure(toplevels, progress);
      const fullSpec = completeSpec(spec, image);
      const sandbox: Sandbox = { ...this.deps.repo.mustGet(name), imageKey: image.key, spec: fullSpec };
      undo.push("host resources", () => driver.remove(sandbox));
      await driver.prepare(sandbox, image);
      this.deps.repo.setPrepared(name, image.key, fullSpec, fullSpec.ephemeral === true);
      undo.release();
      return this.deps.repo.mustGet(name);
    } catch (err) {
      const errors = await undo.run();
      const e = OsnError.from(err);
      if (errors.length > 0)
        e.message += `\n(cleanup after the failure: ${errors.map((x) => x.message).join("; ")})`;
      throw e;
    }
  }

  /** Start a created or stopped sandbox, detached; idempotent for a running one. */
  async start(name: string): Promise<Sandbox> {
    return this.deps.locks.with(`sandbox:${name}`, async () => {
      const sb = this.refresh(this.deps.repo.mustGet(validateName("sandbox", name)));
      if (sb.state === "running") return sb;
      this.assertSettled(sb);
      const driver = this.driver(sb.kind);
      try {
        // Recorded the moment the monitor exists: a CLI killed during the start leaves a
        // running row that reconcile can check, not a workload nothing tracks.
        await driver.start(sb, (monitor) => this.deps.repo.setRunning(name, monitor));
      } catch (err) {
        // The driver has removed the half-started runtime; the sandbox is as it was.
        this.deps.repo.restore(name, sb.state, sb.exitCode);
        throw err;
      }
      return this.deps.repo.mustGet(name);
    });
  }

  /** Stop a sandbox, keeping its writable layer; idempotent for a stopped one. */
  async stop(name: string, graceMs = 10_000): Promise<Sandbox> {
    if (!(graceMs >= 0)) throw new OsnError(ErrorCode.INVALID_ARGUMENT, `invalid grace period ${graceMs} ms`);
    return this.deps.locks.with(`sandbox:${name}`, async () => {
      const sb = this.refresh(this.deps.repo.mustGet(validateName("sandbox", name)));
      if (sb.state !== "running") return sb;
      const driver = this.driver(sb.kind);
      await driver.stop(sb, graceMs);
      const status = driver.status(sb);
      this.deps.repo.setStopped(name, status.running ? null : status.exitCode);
      return this.deps.repo.mustGet(name);
    });
  }

  /** Remove a sandbox and everything it made on the host. */
  async remove(name: string): Promise<void> {
    await this.deps.locks.with(`sandbox:${name}`, async () => {
      const sb = this.deps.repo.mustGet(validateName("sandbox", name));
      if (
        (sb.state === "creating" || sb.state === "removing") &&
        sb.owner &&
        isAlive(sb.owner) &&
        sb.owner.pid !== this.me.pid
      ) {
        throw new OsnError(
          ErrorCode.INVALID_STATE,
          `sandbox ${name} is being ${sb.state.slice(0, -3)}ed by process ${sb.owner.pid}`,
        );
      }
      this.deps.repo.setRemoving(name, this.me);
      await this.driver(sb.kind).remove(sb);
      this.deps.repo.delete(name);
    });
  }

  /**
   * create + start attached + wait + remove. Output streams to the caller as it comes; the
   * promise resolves with the workload's exit status. The sandbox is removed whatever happens.
   */
  async run(
    req: CreateRequest,
    onStarted: (p: AttachedProcess, sandbox: Sandbox) => void,
    progress: ProgressFn = () => {},
    stdin: "inherit" | "ignore" = "ignore",
  ): Promise<number> {
    const sb = await this.create({ ...req, ephemeral: true }, progress);
    try {
      const driver = this.driver(sb.kind);
      const attached = await driver.startAttached(sb, stdin);
      // The runtime process is the monitor (what `stop` waits for); this process is the owner
      // that removes the sandbox afterwards, and whose death makes the sandbox abandoned.
      this.deps.repo.setRunning(sb.name, attached.monitor ?? this.me, this.me);
      onStarted(attached, sb);
      const status = await attached.exit;
      this.deps.repo.setStopped(sb.name, status);
      return status;
    } finally {
      await this.remove(sb.name);
    }
  }

  async exec(name: string, argv: string[], io: ExecIo): Promise<AttachedProcess | number> {
    if (argv.length === 0) throw new OsnError(ErrorCode.INVALID_ARGUMENT, "exec needs a command");
    const sb = this.refresh(this.deps.repo.mustGet(validateName("sandbox", name)));
    if (sb.state !== "running") {
      throw new OsnError(ErrorCode.INVALID_STATE, `sandbox ${name} is ${sb.state}, not running`, {
        hint: `start it first: openshell-nix start ${name}`,
      });
    }
    return this.driver(sb.kind).exec(sb, argv, io);
  }

  get(name: string): Sandbox {
    return this.refresh(this.deps.repo.mustGet(validateName("sandbox", name)));
  }

  /** The sandbox of that name, refreshed, or undefined. */
  find(name: string): Sandbox | undefined {
    const sb = this.deps.repo.get(name);
    return sb ? this.refresh(sb) : undefined;
  }

  exists(name: string): boolean {
    return this.deps.repo.exists(name);
  }

  /** Throws as create would for limits that are out of range. */
  checkLimits(bundle: string, limits: Limits): void {
    resolveLimits(this.deps.config.limits, this.deps.bundles.configured(bundle)?.limits, limits);
  }

  list(): Sandbox[] {
    return this.deps.repo.list().map((s) => this.refresh(s));
  }

  logPaths(name: string): { stdout: string; stderr: string } {
    const sb = this.deps.repo.mustGet(validateName("sandbox", name));
    return this.driver(sb.kind).logPaths(sb);
  }

  image(key: string): ImageInfo | undefined {
    return this.deps.images.get(key);
  }

  /** Remove images no sandbox uses (and their GC roots); returns what was removed. */
  async gcImages(): Promise<ImageInfo[]> {
    const removed: ImageInfo[] = [];
    // A create between building its image and recording it holds no reference yet: wait for
    // the next gc rather than delete an image out from under it.
    if (this.deps.repo.list().some((s) => s.state === "creating" && isAlive(s.owner))) return removed;
    for (const image of this.deps.images.list()) {
      await this.deps.locks.with(`image:${image.key}`, async () => {
        if (this.deps.repo.countByImage(image.key) > 0 || this.deps.lowers.holders(image.key).length > 0)
          return;
        await this.deps.images.remove(image.key);
        removed.push(image);
      });
    }
    return removed;
  }

  /**
   * Bring the host in line with the database after a crash: finish or roll back transitions
   * whose process died, notice workloads that ended, and remove whatever no row accounts for
   * (crun containers, cgroups, directories, mounts, loop devices, temporary files).
   */
  async reconcile(): Promise<string[]> {
    const actions: string[] = [];
    for (const listed of this.deps.repo.list()) {
      if (!isAbandoned(listed) && !(listed.state === "running" && !isAlive(listed.monitor))) continue;
      await this.deps.locks.with(`sandbox:${listed.name}`, async () => {
        // Decide again on the row as it is now: another process may have acted meanwhile.
        const sb = this.deps.repo.get(listed.name);
        if (!sb) return;
        const driver = this.driver(sb.kind);
        if (isAbandoned(sb)) {
          await driver.remove(sb);
          this.deps.repo.delete(sb.name);
          actions.push(`removed sandbox ${sb.name}, left ${sb.state} by a process that died`);
        } else if (sb.state === "running" && !isAlive(sb.monitor)) {
          await driver.stop(sb, 0);
          const status = driver.status(sb);
          this.deps.repo.setStoppedIf(sb.name, sb.monitor, status.running ? null : status.exitCode);
          actions.push(`marked sandbox ${sb.name} stopped (its workload ended)`);
        }
      });
    }
    for (const driver of this.deps.drivers) {
      actions.push(...(await driver.cleanOrphans((n) => this.deps.repo.exists(n))));
    }
    actions.push(...(await this.deps.lowers.repair()));
    actions.push(...this.removeStaleTemporaries());
    actions.push(...this.deps.images.removeOrphans());
    return actions;
  }

  /** A cheap check for every CLI start: reconcile only when something looks off. */
  needsReconcile(): boolean {
    return (
      this.deps.repo
        .list()
        .some((sb) => isAbandoned(sb) || (sb.state === "running" && !isAlive(sb.monitor))) ||
      this.staleTemporaries().length > 0
    );
  }

  private refresh(sb: Sandbox): Sandbox {
    if (sb.state !== "running") return sb;
    const status = this.driver(sb.kind).status(sb);
    if (status.running) return sb;
    // Only if the row still names the monitor that ended (a concurrent start may have begun a new one).
    this.deps.repo.setStoppedIf(sb.name, sb.monitor, status.exitCode);
    return this.deps.repo.get(sb.name) ?? sb;
  }

  private assertSettled(sb: Sandbox): void {
    if (sb.state === "creating" || sb.state === "removing") {
      throw new OsnError(ErrorCode.INVALID_STATE, `sandbox ${sb.name} is still ${sb.state}`);
    }
  }

  /** Half-written images and build dirs of processes that died mid-build: one readdir each. */
  private staleTemporaries(): string[] {
    const stale: string[] = [];
    const pidOf = /[.-](?:tmp-)?(\d+)$/;
    for (const dir of [this.deps.layout.imagesDir, this.deps.layout.tmpDir]) {
      for (const entry of listDir(dir)) {
        if (dir === this.deps.layout.imagesDir && !entry.includes(".tmp-")) continue;
        const pid = Number(pidOf.exec(entry)?.[1]);
        if (pid && !existsSync(`/proc/${pid}`)) stale.push(join(dir, entry));
      }
    }
    return stale;
  }

  private removeStaleTemporaries(): string[] {
    return this.staleTemporaries().map((path) => {
      rmSync(path, { recursive: true, force: true });
      return `removed stale temporary ${path}`;
    });
  }
}

/**
 * A sandbox whose responsible process died: a create or remove that never finished, or a `run`
 * whose CLI is gone (nobody will wait for it or remove it).
 */
function isAbandoned(sb: Sandbox): boolean {
  if (sb.state === "creating" || sb.state === "removing") return !isAlive(sb.owner);
  return sb.spec.ephemeral === true && !isAlive(sb.owner ?? sb.monitor);
}

const FILE_ROOTS = ["/etc/openshell/", "/opt/openshell/"];

/** Files for the sandbox: only below the OpenShell roots, no `..`, no odd modes. */
function validateFiles(files: SandboxFile[]): SandboxFile[] {
  for (const f of files) {
    const parts = f.path.split("/");
    if (
      !FILE_ROOTS.some((r) => f.path.startsWith(r)) ||
      parts.some((p, i) => i > 0 && (p === "" || p === "." || p === "..")) ||
      f.path.includes("\0")
    ) {
      throw new OsnError(
        ErrorCode.INVALID_ARGUMENT,
        `invalid sandbox file path ${JSON.stringify(f.path)}: use a plain path below ${FILE_ROOTS.join(" or ")}`,
      );
    }
    if (!(Number.isInteger(f.mode) && f.mode >= 0 && f.mode <= 0o777))
      throw new OsnError(ErrorCode.INVALID_ARGUMENT, `invalid mode ${f.mode} for ${f.path}`);
  }
  return files;
}

function validateEnv(env: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k))
      throw new OsnError(
        ErrorCode.INVALID_ARGUMENT,
        `invalid environment variable name ${JSON.stringify(k)}`,
      );
    if (v.includes("\0"))
      throw new OsnError(ErrorCode.INVALID_ARGUMENT, `environment variable ${k} contains a NUL byte`);
  }
  return env;
}

/** Defaults < bundle < request; quantities parsed and bounded. */
export function resolveLimits(...layers: (Limits | undefined)[]): ResourceLimits {
  const out: ResourceLimits = {};
  for (const l of layers) {
    if (!l) continue;
    if (l.memory !== undefined) {
      const bytes = parseBytes(l.memory);
      if (bytes < 8 * 2 ** 20)
        throw new OsnError(
          ErrorCode.INVALID_ARGUMENT,
          "memory limit below 8 MiB is too small to run anything",
        );
      out.memoryBytes = bytes;
    }
    if (l.cpus !== undefined) {
      if (!(l.cpus > 0 && l.cpus <= 1024))
        throw new OsnError(ErrorCode.INVALID_ARGUMENT, `invalid cpus ${l.cpus}`);
      out.cpus = l.cpus;
    }
    if (l.pids !== undefined) {
      if (!(Number.isInteger(l.pids) && l.pids >= 8))
        throw new OsnError(ErrorCode.INVALID_ARGUMENT, `invalid pids limit ${l.pids}: at least 8`);
      out.pids = l.pids;
    }
  }
  return out;
}

/**
 * PATH from the bundle's bin directories, /bin/sh and /usr/bin/env from the bundle when it has
 * them, and the idle entrypoint when no command was given.
 */
function completeSpec(spec: SandboxSpec, image: ImageInfo): SandboxSpec {
  const bins = spec.toplevels.map((p) => `${p}/bin`).filter((d) => existsSync(d));
  const find = (tool: string): string | undefined =>
    bins.map((d) => `${d}/${tool}`).find((f) => existsSync(f));
  const shell = find("sh");
  const envTool = find("env");
  const command = spec.command.length > 0 ? spec.command : idleCommand(shell, find("sleep"));
  const links = spec.links ? fhsLinks(spec.toplevels) : undefined;
  const env: Record<string, string> = {
    PATH: bins.join(":") || "/bin",
    HOME: "/root",
    LANG: "C.UTF-8",
    ...spec.env,
  };
  return {
    ...spec,
    command,
    idle: spec.command.length === 0,
    env,
    shell,
    envTool,
    imageKey: image.key,
    ...(links ? { links } : {}),
  };
}

/**
 * /usr/bin/<tool> → the store, for every program in the bundle's bin and sbin directories; the
 * first top-level path that has a tool wins, as on PATH.
 */
export function fhsLinks(toplevels: string[]): [string, string][] {
  const links = new Map<string, string>();
  for (const top of toplevels) {
    for (const dir of ["bin", "sbin"]) {
      for (const name of listDir(join(top, dir)).sort()) {
        if (!links.has(name) && /^[A-Za-z0-9._+-]+$/.test(name)) links.set(name, `${top}/${dir}/${name}`);
      }
    }
  }
  return [...links].map(([name, target]) => [`/usr/bin/${name}`, target]);
}

/**
 * What an idle sandbox (one made for `exec`) runs as pid 1. A bare `sleep` as pid 1 ignores
 * SIGTERM (the kernel drops signals pid 1 has no handler for), so every `stop` would wait out
 * its grace period; a shell that traps TERM exits at once.
 */
function idleCommand(shell: string | undefined, sleep: string | undefined): string[] {
  if (shell && sleep) {
    return [shell, "-c", `trap 'exit 0' TERM INT; while :; do ${sleep} 3600 & wait $!; done`];
  }
  if (sleep) return [sleep, "infinity"];
  throw new OsnError(
    ErrorCode.INVALID_ARGUMENT,
    "no command given and the bundle has no `sleep` to idle with",
    {
      hint: "give the workload after --, or add busybox or coreutils to the bundle",
    },
  );
}
