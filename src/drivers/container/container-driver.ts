import { spawn } from "node:child_process";
import {
  chownSync,
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, OsnError } from "../../common/errors.js";
import { listDir, readText } from "../../common/fs.js";
import { type CgroupLayout, cgroupDirs } from "../../host/cgroups.js";
import { isMountpoint, readMounts, unmount } from "../../host/mounts.js";
import { isAlive, killGroup, killMentioning, type ProcessRef, refOf, waitDead } from "../../host/proc.js";
import type { ImageInfo } from "../../image/image-cache.js";
import type { LowerMounts } from "../../image/lower-mounts.js";
import { lastLines, runCommandStatus } from "../../process/run-command.js";
import type { AttachedProcess, ExecIo, RuntimeStatus, SandboxDriver } from "../../sandbox/driver.js";
import type { Sandbox } from "../../sandbox/types.js";
import type { StateLayout } from "../../state/layout.js";
import { type CrunContext, crunArgv } from "./crun-command.js";
import { buildOciConfig, ociProcess } from "./oci-spec.js";
import { writeRootfs } from "./rootfs.js";

/** Paths of one container sandbox under <state>/sandboxes/<name>. */
export class ContainerPaths {
  constructor(readonly dir: string) {}
  get bundle(): string {
    return join(this.dir, "bundle");
  }
  get rootfs(): string {
    return join(this.dir, "rootfs");
  }
  get upper(): string {
    return join(this.dir, "upper");
  }
  get work(): string {
    return join(this.dir, "work");
  }
  get home(): string {
    return join(this.dir, "home");
  }
  get workspace(): string {
    return join(this.dir, "sandbox");
  }
  /** The network namespace of a slirp sandbox, bound here only inside its monitor's mount namespace. */
  get netns(): string {
    return join(this.dir, "netns");
  }
  get slirpLog(): string {
    return join(this.dir, "slirp4netns.log");
  }
  get stdout(): string {
    return join(this.dir, "stdout.log");
  }
  get stderr(): string {
    return join(this.dir, "stderr.log");
  }
  get exitFile(): string {
    return join(this.dir, "exit.code");
  }
  get pidFile(): string {
    return join(this.dir, "container.pid");
  }
}

const START_DEADLINE_MS = 15_000;
/** The `sandbox` user of the root's /etc/passwd (OpenShell's default agent user). */
const SANDBOX_UID = 10001;

/**
 * Container sandboxes run by crun: a read-only root of a few files, /nix/store an overlay of the
 * shared image (lower) and this sandbox's own upper/work directories, limits in cgroups.
 */
export class CrunContainerDriver implements SandboxDriver {
  readonly kind = "container" as const;
  private readonly crun: CrunContext;

  constructor(
    private readonly layout: StateLayout,
    private readonly lowers: LowerMounts,
    cgroups: CgroupLayout,
  ) {
    this.crun = { root: layout.crunRoot, layout: cgroups };
  }

  paths(name: string): ContainerPaths {
    return new ContainerPaths(this.layout.sandbox(name));
  }

  logPaths(sandbox: Sandbox): { stdout: string; stderr: string } {
    const p = this.paths(sandbox.name);
    return { stdout: p.stdout, stderr: p.stderr };
  }

  cgroupsPath(name: string): string {
    return `/openshell-nix/${this.layout.tag}/${name}`;
  }

  async prepare(sandbox: Sandbox, image: ImageInfo): Promise<void> {
    const p = this.paths(sandbox.name);
    const supervisor = sandbox.spec.privileges === "supervisor";
    const dirs = [p.bundle, p.upper, p.work, p.home, ...(supervisor ? [p.workspace] : [])];
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const slirp = sandbox.spec.network === "slirp";
    writeRootfs(p.rootfs, {
      hostname: sandbox.name,
      shell: sandbox.spec.shell,
      envTool: sandbox.spec.envTool,
      links: sandbox.spec.links,
      files: sandbox.spec.files,
      // slirp4netns puts the host's loopback at 10.0.2.2 and a DNS forwarder at 10.0.2.3, as
      // qemu's slirp does for VMs; the host's resolv.conf may name a loopback resolver.
      hosts: slirp ? ["10.0.2.2 host.openshell.internal"] : [],
      resolvConf: slirp ? "nameserver 10.0.2.3\n" : undefined,
    });
    // The supervisor's workdir belongs to the user it runs the agent as.
    if (supervisor) chownSync(p.workspace, SANDBOX_UID, SANDBOX_UID);
    const lowerDir = await this.lowers.acquire(image.key, sandbox.name);
    const config = buildOciConfig({
      process: {
        args: sandbox.spec.command,
        env: sandbox.spec.env,
        cwd: "/root",
        profile: sandbox.spec.privileges === "supervisor" ? "supervisor" : "default",
      },
      hostname: sandbox.name,
      rootfs: p.rootfs,
      lowerDir,
      upperDir: p.upper,
      workDir: p.work,
      homeDir: p.home,
      workspaceDir: supervisor ? p.workspace : undefined,
      netnsPath: slirp ? p.netns : undefined,
      cgroupsPath: this.cgroupsPath(sandbox.name),
      limits: sandbox.spec.limits,
    });
    writeFileSync(join(p.bundle, "config.json"), JSON.stringify(config, null, 2));
    mkdirSync(this.layout.crunRoot, { recursive: true });
  }

  async start(sandbox: Sandbox, onSpawned: (monitor: ProcessRef) => void = () => {}): Promise<ProcessRef> {
    const p = this.paths(sandbox.name);
    await this.ensureLower(sandbox);
    this.clearRunFiles(p);
    const out = openSync(p.stdout, "a");
    const err = openSync(p.stderr, "a");
    const argv = this.runArgv(sandbox, p.exitFile);
    let child: ReturnType<typeof spawn>;
    try {
      // Its own session: the monitor outlives the CLI and is killed as a group on failure.
      child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ["ignore", out, err] });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    child.unref();
    const ref = child.pid === undefined ? undefined : refOf(child.pid);
    if (!ref) throw new OsnError(ErrorCode.RUNTIME_FAILED, `could not start crun for ${sandbox.name}`);
    onSpawned(ref);
    try {
      await this.waitStarted(sandbox, p, () => existsSync(p.exitFile) || !isAlive(ref));
    } catch (err) {
      // Nothing may keep running that no row tracks: a start that timed out could still
      // create its container later.
      killGroup(ref);
      await runCommandStatus(crunArgv(this.crun, ["delete", "--force", sandbox.name]));
      this.removeCgroups(sandbox.name);
      throw err;
    }
    return ref;
  }

  async startAttached(sandbox: Sandbox, stdin: "inherit" | "ignore" = "ignore"): Promise<AttachedProcess> {
    if (sandbox.spec.network === "slirp") {
      throw new OsnError(
        ErrorCode.INVALID_ARGUMENT,
        "attached runs of networked container sandboxes are not supported",
        {
          hint: "create and start the sandbox instead",
        },
      );
    }
    const p = this.paths(sandbox.name);
    await this.ensureLower(sandbox);
    this.clearRunFiles(p);
    const argv = this.runArgv(sandbox);
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: [stdin, "pipe", "pipe"] });
    const { stdout, stderr } = child;
    if (!stdout || !stderr) throw new OsnError(ErrorCode.INTERNAL, "crun child has no output pipes");
    stdout.pipe(createWriteStream(p.stdout, { flags: "a" }));
    stderr.pipe(createWriteStream(p.stderr, { flags: "a" }));
    let tail = "";
    stderr.on("data", (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
    });
    // The streams are handed over at once (no wait for a start signal, so no added latency).
    // Whether crun itself failed is decided at the end: crun writes its pid file once the
    // container exists, so an exit without one is crun's failure (bad config, overlay or cgroup
    // error, no such program), reported as ours and never as the workload's exit status.
    const exit = new Promise<number>((resolve, reject) => {
      child.on("error", (e) =>
        reject(new OsnError(ErrorCode.RUNTIME_FAILED, `crun: ${e.message}`, { cause: e })),
      );
      child.on("close", (code, signal) => {
        const status = code ?? (signal === "SIGKILL" ? 137 : 143);
        if (!existsSync(p.pidFile)) {
          const why = lastLines(tail, 5);
          reject(
            new OsnError(
              ErrorCode.RUNTIME_FAILED,
              `crun failed to start ${sandbox.name}${why ? `: ${why}` : ""}`,
            ),
          );
          return;
        }
        writeFileSync(p.exitFile, `${status}\n`);
        resolve(status);
      });
    });
    const monitor = child.pid === undefined ? undefined : refOf(child.pid);
    return { stdout, stderr, exit, monitor, kill: (signal = "SIGTERM") => void this.signal(sandbox, signal) };
  }

  status(sandbox: Sandbox): RuntimeStatus {
    const p = this.paths(sandbox.name);
    if (sandbox.monitor && isAlive(sandbox.monitor)) return { running: true };
    return { running: false, exitCode: readExitCode(p.exitFile) };
  }

  async stop(sandbox: Sandbox, graceMs: number): Promise<void> {
    const monitor = sandbox.monitor;
    if (monitor && isAlive(monitor)) {
      await this.signal(sandbox, "SIGTERM");
      if (!(await waitDead(monitor, graceMs))) {
        await this.signal(sandbox, "SIGKILL");
        // The whole group: slirp4netns, if any, is in it.
        if (!(await waitDead(monitor, 5_000))) killGroup(monitor);
      }
    }
    // A monitor that died abruptly cannot have stopped its slirp4netns.
    if (sandbox.spec.network === "slirp") await killMentioning(this.paths(sandbox.name).netns);
    // `crun run` deletes its container when the workload ends; after a kill of crun itself the
    // container state is left behind, so delete it (a no-op error when it is gone).
    await runCommandStatus(crunArgv(this.crun, ["delete", "--force", sandbox.name]));
    this.removeCgroups(sandbox.name);
  }

  async exec(sandbox: Sandbox, argv: string[], io: ExecIo): Promise<AttachedProcess | number> {
    if (!this.status(sandbox).running) {
      throw new OsnError(ErrorCode.INVALID_STATE, `sandbox ${sandbox.name} is not running`, {
        hint: `start it first: openshell-nix start ${sandbox.name}`,
      });
    }
    const p = this.paths(sandbox.name);
    const processFile = join(p.bundle, `exec-${process.pid}-${Date.now()}.json`);
    writeFileSync(
      processFile,
      JSON.stringify(ociProcess({ args: argv, env: sandbox.spec.env, cwd: "/root" })),
    );
    const cmd = crunArgv(this.crun, ["exec", "--process", processFile, sandbox.name], {
      dropMounts: imageMountsExcept(),
    });
    const child = spawn(cmd[0] as string, cmd.slice(1), {
      stdio: io.stdio === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"],
    });
    const exit = new Promise<number>((resolve, reject) => {
      child.on("error", (e) => reject(new OsnError(ErrorCode.RUNTIME_FAILED, `crun exec: ${e.message}`)));
      child.on("close", (code, signal) => {
        rmSync(processFile, { force: true });
        resolve(code ?? (signal === "SIGKILL" ? 137 : 143));
      });
    });
    if (io.stdio === "inherit") return exit;
    if (!child.stdout || !child.stderr) throw new OsnError(ErrorCode.INTERNAL, "crun exec has no pipes");
    return { stdout: child.stdout, stderr: child.stderr, exit, kill: (s = "SIGTERM") => child.kill(s) };
  }

  async remove(sandbox: Sandbox): Promise<void> {
    await this.stop(sandbox, 0);
    await this.lowers.release(sandbox.imageKey, sandbox.name);
    await removeTree(this.paths(sandbox.name).dir);
  }

  async cleanOrphans(isKnown: (name: string) => boolean): Promise<string[]> {
    const actions: string[] = [];
    // Each listing comes before the database is asked: a sandbox's row is written before any
    // of its resources exist, so nothing a concurrent `create` is making looks orphaned.
    for (const id of listDir(this.layout.crunRoot)) {
      if (isKnown(id)) continue;
      await runCommandStatus(crunArgv(this.crun, ["kill", id, "SIGKILL"]));
      await runCommandStatus(crunArgv(this.crun, ["delete", "--force", id]));
      actions.push(`deleted orphan crun container ${id}`);
    }
    for (const name of listDir(this.layout.sandboxesDir)) {
      if (isKnown(name)) continue;
      // A monitor shell still waiting on its crun would write its exit file into the
      // directory while it is being removed.
      await killMentioning(`${this.layout.sandbox(name)}/`);
      this.removeCgroups(name);
      await removeTree(this.layout.sandbox(name));
      actions.push(`removed orphan sandbox directory ${name}`);
    }
    for (const dir of cgroupDirs(this.crun.layout, `/openshell-nix/${this.layout.tag}`)) {
      for (const name of listDir(dir)) {
        if (!existsSync(join(dir, name, "cgroup.procs")) || isKnown(name)) continue;
        this.removeCgroups(name);
        actions.push(`removed orphan cgroup ${name}`);
      }
    }
    return actions;
  }

  private runArgv(sandbox: Sandbox, recordExitTo?: string): string[] {
    const p = this.paths(sandbox.name);
    return crunArgv(this.crun, ["run", "--bundle", p.bundle, "--pid-file", p.pidFile, sandbox.name], {
      recordExitTo,
      dropMounts: imageMountsExcept(this.layout.mount(sandbox.imageKey)),
      slirp: sandbox.spec.network === "slirp" ? { netns: p.netns, log: p.slirpLog } : undefined,
    });
  }

  /**
   * The image mount is normally there since prepare; after a host reboot (mounts gone, rows
   * kept) acquiring again mounts it. Idempotent, and cheap when mounted.
   */
  private async ensureLower(sandbox: Sandbox): Promise<void> {
    // Fast path without the lock: while this sandbox holds a reference nobody unmounts it.
    if (isMountpoint(this.layout.mount(sandbox.imageKey))) return;
    await this.lowers.acquire(sandbox.imageKey, sandbox.name);
  }

  private clearRunFiles(p: ContainerPaths): void {
    rmSync(p.exitFile, { force: true });
    rmSync(p.pidFile, { force: true });
  }

  /** Race: the container process exists (its pid file) / the monitor ended / the deadline. */
  private async waitStarted(sandbox: Sandbox, p: ContainerPaths, ended: () => boolean): Promise<void> {
    const deadline = Date.now() + START_DEADLINE_MS;
    let wait = 1;
    while (Date.now() < deadline) {
      if (existsSync(p.pidFile)) return;
      if (ended()) {
        if (existsSync(p.pidFile)) return;
        const why = lastLines(readText(p.stderr), 5);
        throw new OsnError(
          ErrorCode.RUNTIME_FAILED,
          `crun failed to start ${sandbox.name}${why ? `: ${why}` : ""}`,
        );
      }
      await sleep(wait);
      wait = Math.min(wait * 2, 20);
    }
    throw new OsnError(
      ErrorCode.TIMEOUT,
      `sandbox ${sandbox.name} did not start within ${START_DEADLINE_MS} ms`,
    );
  }

  private async signal(sandbox: Sandbox, signal: NodeJS.Signals): Promise<void> {
    await runCommandStatus(crunArgv(this.crun, ["kill", sandbox.name, signal]));
  }

  /** crun removes its cgroups on a clean exit, not when it is killed: finish the job. */
  private removeCgroups(name: string): void {
    for (const dir of cgroupDirs(this.crun.layout, this.cgroupsPath(name))) {
      if (!existsSync(dir)) continue;
      try {
        for (const pid of readText(join(dir, "cgroup.procs")).split("\n").filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // already gone
          }
        }
        rmdirSync(dir);
      } catch {
        // busy for a moment after a kill; reconcile retries
      }
    }
  }
}

function readExitCode(file: string): number | null {
  const text = readText(file).trim();
  return text === "" ? null : Number(text);
}

/** erofs mounts a long-lived crun call must not keep copies of (see CrunCallOptions). */
function imageMountsExcept(keep?: string): string[] {
  return readMounts()
    .filter((m) => m.fstype === "erofs" && m.mountpoint !== keep)
    .map((m) => m.mountpoint);
}

/**
 * rm -rf that refuses to cross a mount: anything still mounted below the directory (which
 * would be a bug or a crash leftover) is unmounted first, so host data behind a bind mount can
 * never be deleted through it.
 */
async function removeTree(dir: string): Promise<void> {
  const below = readMounts()
    .filter((m) => m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
  for (const m of below) await unmount(m.mountpoint);
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
}
