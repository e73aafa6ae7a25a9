/**
 * Start-up benchmark of container sandboxes: where openshell-nix sits between the crun floor and
 * podman. Every variant runs `python3 -c 'print(42)'` from the demo bundle and is timed from its
 * start to the first line on stdout:
 *
 *   host python          the bundle's python on the host: no sandbox at all;
 *   bare crun            the floor: `crun run` of a bundle directory prepared before the clock
 *                        starts, with the config.json openshell-nix writes (same mounts, seccomp,
 *                        capabilities, cgroups) and the erofs image mounted once as overlay lower;
 *   openshell-nix (API)  SandboxService.run in this process: the daemon path, no Node start-up;
 *   openshell-nix (CLI)  the CLI as a user types it, Node start-up included;
 *   podman run           podman with private storage, its image imported from a tarball of the
 *                        same closure.
 *
 * Then the first use of a bundle never seen before, each run on fresh state: image build + first
 * run for openshell-nix, `podman import` + first run for podman. Variants run interleaved (round
 * robin, with a rotating start) so that drift of the machine affects all of them alike.
 *
 * Run as root: node dist/bench/containers.js [--runs N]. Everything it creates lives under one
 * temporary directory and is removed at the end, as are the cgroups and Nix GC roots it causes.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { constants, cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type App, openApp } from "../src/app.js";
import type { Config } from "../src/config/schema.js";
import { type CrunContext, crunArgv } from "../src/drivers/container/crun-command.js";
import { buildOciConfig } from "../src/drivers/container/oci-spec.js";
import { writeRootfs } from "../src/drivers/container/rootfs.js";
import { type CgroupLayout, cgroupDirs, detectCgroupLayout } from "../src/host/cgroups.js";
import { mountErofs, readMounts, unmount } from "../src/host/mounts.js";
import type { ImageInfo } from "../src/image/image-cache.js";
import { CleanupStack } from "../src/process/cleanup-stack.js";
import { lastLines, runCommand, runCommandStatus } from "../src/process/run-command.js";
import { type CreateRequest, resolveLimits } from "../src/sandbox/sandbox-service.js";
import { StateLayout } from "../src/state/layout.js";

const COMMAND = ["python3", "-c", "print(42)"];
const EXPECTED_OUTPUT = "42";
const CONFIG: Config = { image: { compression: "lz4" } };
const DEFAULT_RUNS = 10;
const MIN_FIRST_USE_RUNS = 5;
const MiB = 2 ** 20;

/** The targets of the issue: warm start near the floor, well ahead of podman, first use even more so. */
const TARGET = { warmOverFloor: 1.3, podmanOverWarm: 3, podmanOverFirstUse: 4 };

const ROW = {
  host: "host python",
  floor: "bare crun",
  api: "openshell-nix (API)",
  apiHeld: "openshell-nix (API, image already mounted)",
  cli: "openshell-nix (CLI)",
  podman: "podman run",
  oursFirst: "openshell-nix: image build + first run",
  podmanFirst: "podman: import + first run",
} as const;

let interrupted = false;

// ---------------------------------------------------------------------------------------------
// Timing one run

/** Notes when the first complete line appears on a stream, and keeps what it carried. */
class LineWatch {
  firstLineAt: number | undefined;
  private readonly chunks: Buffer[] = [];

  constructor(stream: Readable) {
    stream.on("data", (chunk: Buffer | string) => {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      if (this.firstLineAt === undefined && buf.includes(0x0a)) this.firstLineAt = performance.now();
      this.chunks.push(buf);
    });
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

interface Watched {
  out: LineWatch;
  err: LineWatch;
  exit: Promise<number>;
}

function spawnWatched(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Watched {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env });
  const out = new LineWatch(child.stdout);
  const err = new LineWatch(child.stderr);
  const exit = new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  return { out, err, exit };
}

/** Milliseconds from t0 to the first output line, once the run has ended and printed the right thing. */
function checkedLatency(label: string, t0: number, status: number, out: LineWatch, err: LineWatch): number {
  if (status !== 0 || out.text.trim() !== EXPECTED_OUTPUT || out.firstLineAt === undefined) {
    const stderr = lastLines(err.text, 5);
    throw new Error(
      `${label}: exit ${status}, stdout ${JSON.stringify(out.text.slice(0, 200))}, stderr: ${stderr}`,
    );
  }
  return out.firstLineAt - t0;
}

async function latencySince(label: string, t0: number, run: Watched): Promise<number> {
  return checkedLatency(label, t0, await run.exit, run.out, run.err);
}

/** Spawn a command and time it from just before spawn() to its first stdout line. */
function timeSpawn(label: string, argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  return latencySince(label, t0, spawnWatched(argv, env));
}

/** Time SandboxService.run from the call (or an earlier t0) to the first stdout chunk. */
async function timeServiceRun(app: App, req: CreateRequest, t0 = performance.now()): Promise<number> {
  const io: { out?: LineWatch; err?: LineWatch } = {};
  const status = await app.service.run(req, (p) => {
    io.out = new LineWatch(p.stdout);
    io.err = new LineWatch(p.stderr);
  });
  if (!io.out || !io.err) throw new Error("the service never reported the started workload");
  return checkedLatency("openshell-nix", t0, status, io.out, io.err);
}

// ---------------------------------------------------------------------------------------------
// Running variants interleaved

interface Variant {
  name: string;
  /** One sample in ms. Untimed preparation and cleanup happen inside, outside the clock. */
  sample(): Promise<number>;
}

interface Outcome {
  samples: number[];
  /** Why the variant stopped (or never ran); its samples so far are kept. */
  error?: string;
}

/**
 * `warmups` untimed runs of each variant, then `runs` rounds in which every variant runs once,
 * starting each round one variant further along. A variant that fails is dropped, with the reason.
 */
async function runInterleaved(
  variants: Variant[],
  runs: number,
  warmups: number,
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>(variants.map((v) => [v.name, { samples: [] }]));
  const attempt = async (v: Variant, keep: boolean): Promise<void> => {
    const outcome = outcomes.get(v.name);
    if (!outcome || outcome.error !== undefined) return;
    if (interrupted) throw new Error("interrupted");
    try {
      const ms = await v.sample();
      if (keep) outcome.samples.push(ms);
    } catch (err) {
      outcome.error = err instanceof Error ? err.message : String(err);
      process.stderr.write(`  ${v.name} failed, dropped: ${outcome.error}\n`);
    }
  };
  for (let w = 0; w < warmups; w++) for (const v of variants) await attempt(v, false);
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length];
      if (v) await attempt(v, true);
    }
    process.stderr.write(`  round ${round + 1}/${runs} done\n`);
  }
  return outcomes;
}

interface Stats {
  n: number;
  min: number;
  median: number;
  p90: number;
}

/** min, median (mean of the middle two for even n) and p90 (nearest rank). */
function summarize(values: readonly number[]): Stats | undefined {
  const s = [...values].sort((a, b) => a - b);
  const at = (i: number): number => s[Math.min(Math.max(i, 0), s.length - 1)] ?? Number.NaN;
  if (s.length === 0) return undefined;
  const mid = s.length / 2;
  const median = s.length % 2 === 1 ? at(Math.floor(mid)) : (at(mid - 1) + at(mid)) / 2;
  return { n: s.length, min: at(0), median, p90: at(Math.ceil(0.9 * s.length) - 1) };
}

// ---------------------------------------------------------------------------------------------
// The bench environment

interface Bench {
  /** Temporary directory holding everything this run creates. */
  root: string;
  app: App;
  toplevels: string[];
  image: ImageInfo;
  /** The workload's environment, as the service builds it: PATH from the bundle, HOME, LANG. */
  env: Record<string, string>;
  cgroups: CgroupLayout;
  cleanup: CleanupStack;
}

function bundleBins(toplevels: readonly string[]): string[] {
  return toplevels.map((p) => `${p}/bin`).filter((d) => existsSync(d));
}

function findTool(toplevels: readonly string[], tool: string): string | undefined {
  return bundleBins(toplevels)
    .map((d) => `${d}/${tool}`)
    .find((f) => existsSync(f));
}

function sandboxEnv(toplevels: readonly string[]): Record<string, string> {
  return { PATH: bundleBins(toplevels).join(":") || "/bin", HOME: "/root", LANG: "C.UTF-8" };
}

/** Unmount whatever is still mounted below `dir` (deepest first), then delete it. */
async function removeTree(dir: string): Promise<void> {
  const below = readMounts()
    .filter((m) => m.mountpoint.startsWith(`${dir}/`))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
  for (const m of below) await unmount(m.mountpoint);
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// The floor: crun with a prepared bundle directory

/**
 * What a runtime that had everything cached would still do per sandbox: a fresh upper/work pair
 * and config.json (written before the clock starts), then `crun run`, invoked exactly as
 * openshell-nix invokes it (on a hybrid-cgroup host crun runs in a private mount namespace).
 */
class CrunFloor {
  private readonly lower: string;
  private readonly rootfs: string;
  private readonly home: string;
  private readonly crun: CrunContext;
  private readonly cgroupParent: string;
  private runs = 0;

  private constructor(
    private readonly dir: string,
    private readonly bench: Bench,
  ) {
    this.lower = join(dir, "lower");
    this.rootfs = join(dir, "rootfs");
    this.home = join(dir, "home");
    this.crun = { root: join(dir, "crun-state"), layout: bench.cgroups };
    // Same depth and naming as the driver's cgroups, under a tag of our own.
    this.cgroupParent = `/openshell-nix/${new StateLayout(dir).tag}`;
  }

  get cgroupTop(): string {
    return this.cgroupParent;
  }

  static async prepare(bench: Bench): Promise<CrunFloor> {
    const floor = new CrunFloor(join(bench.root, "floor"), bench);
    for (const d of [floor.lower, floor.home, floor.crun.root]) mkdirSync(d, { recursive: true });
    // Our own loop mount of the image: the service's shared mount comes and goes with its sandboxes.
    await mountErofs(bench.image.path, floor.lower);
    bench.cleanup.push("floor lower mount", () => unmount(floor.lower));
    const tops = bench.toplevels;
    writeRootfs(floor.rootfs, {
      hostname: "floor",
      shell: findTool(tops, "sh"),
      envTool: findTool(tops, "env"),
    });
    return floor;
  }

  async sample(): Promise<number> {
    const id = `floor-${this.runs++}`;
    const run = join(this.dir, id);
    this.writeBundle(id, run);
    const argv = crunArgv(this.crun, ["run", "--bundle", run, "--pid-file", join(run, "pid"), id]);
    try {
      return await timeSpawn(ROW.floor, argv);
    } catch (err) {
      await runCommandStatus(crunArgv(this.crun, ["delete", "--force", id]));
      throw err;
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  }

  private writeBundle(id: string, run: string): void {
    const upperDir = join(run, "upper");
    const workDir = join(run, "work");
    for (const d of [upperDir, workDir]) mkdirSync(d, { recursive: true });
    const config = buildOciConfig({
      process: { args: COMMAND, env: this.bench.env, cwd: "/root" },
      hostname: id,
      rootfs: this.rootfs,
      lowerDir: join(this.lower, "nix", "store"),
      upperDir,
      workDir,
      homeDir: this.home,
      cgroupsPath: `${this.cgroupParent}/${id}`,
      limits: resolveLimits(this.bench.app.config.limits),
    });
    writeFileSync(join(run, "config.json"), JSON.stringify(config));
  }
}

// ---------------------------------------------------------------------------------------------
// podman with private storage

/**
 * One podman storage, all of it under `dir`. The flags are what this host needs: cgroupfs (no
 * systemd session), no events journal, low explicit ulimits (root here lacks CAP_SYS_RESOURCE and
 * the default nofile of 1048576 fails), no network. On a hybrid-cgroup host the runtime is runc
 * (crun 1.8 refuses that layout); elsewhere crun, podman's own default.
 */
class PodmanStore {
  private readonly runtimeWrapper: string;
  private readonly graphRoot: string;
  private readonly runRoot: string;
  private readonly tmp: string;

  constructor(
    readonly dir: string,
    runtime: "crun" | "runc",
  ) {
    this.graphRoot = join(dir, "root");
    this.runRoot = join(dir, "run");
    this.tmp = join(dir, "tmp");
    for (const d of [join(dir, "bin"), this.tmp]) mkdirSync(d, { recursive: true });
    // A wrapper, not --runtime-flag: conmon's exit command (`podman container cleanup`) does
    // not pass runtime flags on, and the runtime's state must stay out of /run.
    this.runtimeWrapper = join(dir, "bin", runtime);
    const script = `#!/bin/sh\nexec /usr/bin/${runtime} --root '${join(dir, "runtime-state")}' "$@"\n`;
    writeFileSync(this.runtimeWrapper, script, { mode: 0o755 });
  }

  get storageDirs(): string[] {
    return [this.graphRoot, this.runRoot];
  }

  /** TMPDIR too: image import stages its big files there, not under --tmpdir. */
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, TMPDIR: this.tmp };
  }

  /**
   * `podman import` keeps a blob-info cache in /var/lib/containers whatever --root says, so it
   * runs in a private mount namespace where /var/lib is an empty tmpfs. (run, create and rm
   * write nothing outside the storage.)
   */
  async importTarball(tarball: string, tag: string): Promise<void> {
    const hideVarLib = ["unshare", "--mount", "--propagation", "private", "sh", "-c"];
    const script = 'mount -t tmpfs bench-varlib /var/lib && exec "$@"';
    const argv = [...hideVarLib, script, "sh", ...this.podman(["import", "--quiet", tarball, tag])];
    await runCommand(argv, { env: this.env });
  }

  runArgv(tag: string, env: Record<string, string>): string[] {
    return this.podman(["run", "--rm", ...this.containerFlags(env), tag, ...COMMAND]);
  }

  async create(tag: string, env: Record<string, string>): Promise<string> {
    const r = await runCommand(this.podman(["create", ...this.containerFlags(env), tag, ...COMMAND]), {
      env: this.env,
    });
    return r.stdout.trim();
  }

  async removeContainer(id: string): Promise<void> {
    await runCommand(this.podman(["rm", "--force", id]), { env: this.env });
  }

  async destroy(): Promise<void> {
    await removeTree(this.dir);
  }

  private podman(args: string[]): string[] {
    return [
      "podman",
      ...["--root", this.graphRoot, "--runroot", this.runRoot, "--tmpdir", this.tmp],
      ...["--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none"],
      ...["--runtime", this.runtimeWrapper],
      ...args,
    ];
  }

  private containerFlags(env: Record<string, string>): string[] {
    const flags = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
    for (const [k, v] of Object.entries(env)) flags.push("--env", `${k}=${v}`);
    return flags;
  }
}

function podmanRuntime(layout: CgroupLayout): "crun" | "runc" {
  return layout.mode === "hybrid" ? "runc" : "crun";
}

/** A tarball of the closure with absolute store paths, as `podman import` wants a root filesystem. */
async function closureTarball(bench: Bench): Promise<{ path: string; ms: number }> {
  const path = join(bench.root, "closure.tar");
  const t0 = performance.now();
  await runCommand(["tar", "-C", "/", "-cf", path, ...bench.image.closure.map((p) => p.slice(1))]);
  return { path, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------------
// Disk footprint

interface DiskUse {
  /** Sum of lstat sizes of every entry, directories included (du --apparent-size -b). */
  apparent: number;
  /** The part of `apparent` in regular files and symlinks: what was written, not directory blocks. */
  fileBytes: number;
  /** Allocated blocks (du -sk), in bytes. */
  allocated: number;
}

/** lstat sizes below the given paths, hard links once, without crossing into other filesystems. */
function walkSizes(paths: readonly string[]): { apparent: number; fileBytes: number } {
  const seen = new Set<string>();
  const sum = { apparent: 0, fileBytes: 0 };
  const visit = (path: string, dev: number): void => {
    const st = lstatSync(path);
    const inode = `${st.dev}:${st.ino}`;
    if (st.dev !== dev || seen.has(inode)) return;
    seen.add(inode);
    sum.apparent += st.size;
    if (!st.isDirectory()) sum.fileBytes += st.size;
    else for (const entry of readdirSync(path)) visit(join(path, entry), dev);
  };
  for (const p of paths) if (existsSync(p)) visit(p, lstatSync(p).dev);
  return sum;
}

async function allocatedBytes(paths: readonly string[]): Promise<number> {
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) return 0;
  const r = await runCommand(["du", "-skxc", ...present]);
  const total = r.stdout.trim().split("\n").pop()?.split(/\s+/)[0];
  return Number(total) * 1024;
}

async function diskUse(paths: readonly string[]): Promise<DiskUse> {
  return { ...walkSizes(paths), allocated: await allocatedBytes(paths) };
}

function diskDelta(after: DiskUse, before: DiskUse): DiskUse {
  return {
    apparent: after.apparent - before.apparent,
    fileBytes: after.fileBytes - before.fileBytes,
    allocated: after.allocated - before.allocated,
  };
}

interface Footprints {
  oursSandboxDir: DiskUse;
  oursStateDelta: DiskUse;
  podmanStorageDelta: DiskUse;
}

/** What one more created (not started) sandbox adds on the host: its directory, and the state as a whole. */
async function oursFootprint(app: App): Promise<Pick<Footprints, "oursSandboxDir" | "oursStateDelta">> {
  const before = await diskUse([app.layout.root]);
  const sb = await app.service.create({ bundle: "demo", command: COMMAND });
  try {
    const oursSandboxDir = await diskUse([app.layout.sandbox(sb.name)]);
    return { oursSandboxDir, oursStateDelta: diskDelta(await diskUse([app.layout.root]), before) };
  } finally {
    await app.service.remove(sb.name);
  }
}

/** What `podman create` adds to a storage that already holds the image. */
async function podmanFootprint(
  podman: PodmanStore,
  tag: string,
  env: Record<string, string>,
): Promise<DiskUse> {
  const before = await diskUse(podman.storageDirs);
  const id = await podman.create(tag, env);
  try {
    return diskDelta(await diskUse(podman.storageDirs), before);
  } finally {
    await podman.removeContainer(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Host leftovers: cgroups and Nix GC roots

/**
 * crun leaves the parents of its cgroups, podman its conmon groups under /libpod_parent. This
 * removes what appeared during the run, in subtrees only this benchmark creates in (rmdir only
 * succeeds for empty groups, so nothing in use can go).
 */
class CgroupSweeper {
  private readonly tops = new Set<string>(["/libpod_parent"]);
  private readonly before: Set<string>;
  private readonly hadSharedParent: boolean;

  constructor(private readonly layout: CgroupLayout) {
    this.before = new Set(this.tree());
    this.hadSharedParent = cgroupDirs(layout, "/openshell-nix").some((d) => existsSync(d));
  }

  /** A subtree private to this run: the cgroups of one of its state directories. */
  track(path: string): void {
    this.tops.add(path);
  }

  sweep(): number {
    const fresh = this.tree()
      .filter((d) => !this.before.has(d))
      .sort((a, b) => b.length - a.length);
    if (!this.hadSharedParent) fresh.push(...cgroupDirs(this.layout, "/openshell-nix"));
    let removed = 0;
    for (const dir of fresh) {
      try {
        rmdirSync(dir);
        removed++;
      } catch {
        // not empty or already gone: not ours to force
      }
    }
    return removed;
  }

  private tree(): string[] {
    const out: string[] = [];
    const walk = (dir: string): void => {
      out.push(dir);
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    };
    for (const top of this.tops)
      for (const dir of cgroupDirs(this.layout, top)) if (existsSync(dir)) walk(dir);
    return out;
  }
}

/** `nix-store --add-root --indirect` links each root from gcroots/auto; drop those pointing into `dir`. */
function removeAutoRoots(dir: string): number {
  const auto = "/nix/var/nix/gcroots/auto";
  let removed = 0;
  for (const name of existsSync(auto) ? readdirSync(auto) : []) {
    const link = join(auto, name);
    try {
      if (readlinkSync(link).startsWith(`${dir}/`)) {
        unlinkSync(link);
        removed++;
      }
    } catch {
      // not a symlink, or gone meanwhile
    }
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Variants

function cliPath(): string | undefined {
  const candidates = ["../src/bin/cli.js", "../bin/cli.js"].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  return candidates.find((p) => existsSync(p));
}

function hostPythonVariant(bench: Bench): Variant {
  const python = findTool(bench.toplevels, "python3");
  return {
    name: ROW.host,
    sample: () =>
      python
        ? timeSpawn(ROW.host, [python, ...COMMAND.slice(1)], bench.env)
        : Promise.reject(new Error("the bundle has no bin/python3")),
  };
}

/** `run` while another sandbox of the bundle exists, so the shared lower mount is already there. */
function heldMountVariant(app: App): Variant {
  return {
    name: ROW.apiHeld,
    sample: async () => {
      const held = await app.service.create({ bundle: "demo", command: COMMAND });
      try {
        return await timeServiceRun(app, { bundle: "demo", command: COMMAND });
      } finally {
        await app.service.remove(held.name);
      }
    },
  };
}

/** The CLI on the same state directory (so the image is warm); undefined until it is built. */
function cliVariant(app: App): Variant | undefined {
  const cli = cliPath();
  if (!cli) return undefined;
  const argv = [process.execPath, cli, "--state-dir", app.layout.root, "run", "--bundle", "demo", "--"];
  return { name: ROW.cli, sample: () => timeSpawn(ROW.cli, [...argv, ...COMMAND]) };
}

function warmVariants(bench: Bench, floor: CrunFloor, podman: PodmanStore, tag: string): Variant[] {
  const { app } = bench;
  const cli = cliVariant(app);
  return [
    hostPythonVariant(bench),
    { name: ROW.floor, sample: () => floor.sample() },
    { name: ROW.api, sample: () => timeServiceRun(app, { bundle: "demo", command: COMMAND }) },
    heldMountVariant(app),
    ...(cli ? [cli] : []),
    { name: ROW.podman, sample: () => timeSpawn(ROW.podman, podman.runArgv(tag, bench.env), podman.env) },
  ];
}

/**
 * Each first-use sample writes tens of MiB and the cleanup deletes them again: write all of that
 * back before the next sample starts, so neither kind pays for the other's writeback.
 */
async function settleDisk(): Promise<void> {
  await runCommand(["sync"]);
}

interface BuildSample {
  ensureMs: number;
  buildMs: number;
  bytes: number;
}

function firstUseVariants(
  bench: Bench,
  tarball: string,
  tag: string,
  sweeper: CgroupSweeper,
  builds: BuildSample[],
): Variant[] {
  let n = 0;
  const ours: Variant = {
    name: ROW.oursFirst,
    sample: async () => {
      // Opening the state is outside the clock: a daemon has its state open already.
      const app = await openApp({ stateDir: join(bench.root, `first-use-${n++}`), config: CONFIG });
      sweeper.track(`/openshell-nix/${app.layout.tag}`);
      try {
        const t0 = performance.now();
        const { image, built } = await app.images.ensure(bench.toplevels);
        if (!built) throw new Error("a fresh state directory found the image already built");
        builds.push({ ensureMs: performance.now() - t0, buildMs: image.buildMs, bytes: image.bytes });
        // Store paths, not `demo`: in a fresh state directory the demo bundle would first run
        // nix-build to make its GC root, which is Nix's work, as the tarball is podman's.
        return await timeServiceRun(app, { storePaths: bench.toplevels, command: COMMAND }, t0);
      } finally {
        app.close();
        await removeTree(app.layout.root);
        await settleDisk();
      }
    },
  };
  const podman: Variant = {
    name: ROW.podmanFirst,
    sample: async () => {
      const store = new PodmanStore(
        join(bench.root, `podman-first-use-${n++}`),
        podmanRuntime(bench.cgroups),
      );
      try {
        const t0 = performance.now();
        await store.importTarball(tarball, tag);
        return await latencySince(
          ROW.podmanFirst,
          t0,
          spawnWatched(store.runArgv(tag, bench.env), store.env),
        );
      } finally {
        await store.destroy();
        await settleDisk();
      }
    },
  };
  return [ours, podman];
}

// ---------------------------------------------------------------------------------------------
// Report

async function firstLine(argv: string[]): Promise<string> {
  try {
    const r = await runCommandStatus(argv);
    return (r.stdout || r.stderr).trim().split("\n")[0] ?? "?";
  } catch {
    return "not installed";
  }
}

async function machineFacts(bench: Bench): Promise<string[]> {
  const cpu = cpus();
  const fsType = await firstLine(["stat", "-f", "-c", "%T", bench.root]);
  const controllers = bench.cgroups.v2Controllers.join(" ") || "none";
  return [
    `- kernel ${release()}, ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM`,
    `- ${await firstLine(["crun", "--version"])}; ${await firstLine(["runc", "--version"])}; ${await firstLine(["podman", "--version"])}; node ${process.version}`,
    `- cgroups: ${bench.cgroups.mode} (v2 controllers: ${controllers}); podman runtime: ${podmanRuntime(bench.cgroups)}`,
    `- temporary state on ${fsType} at ${bench.root}`,
  ];
}

const ms = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(1));
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(2)} MiB`;

function latencyTable(names: string[], outcomes: Map<string, Outcome>, baseline?: string): string[] {
  const base = baseline ? summarize(outcomes.get(baseline)?.samples ?? []) : undefined;
  const head = baseline ? ` median ÷ ${baseline} |` : "";
  const lines = [
    `| variant | runs | min ms | median ms | p90 ms |${head}`,
    `|---|--:|--:|--:|--:|${baseline ? "--:|" : ""}`,
  ];
  for (const name of names) {
    const o = outcomes.get(name);
    const s = summarize(o?.samples ?? []);
    const ratio = baseline ? ` ${s && base ? `${(s.median / base.median).toFixed(2)}×` : "n/a"} |` : "";
    lines.push(`| ${name} | ${s?.n ?? 0} | ${ms(s?.min)} | ${ms(s?.median)} | ${ms(s?.p90)} |${ratio}`);
    if (o?.error !== undefined) {
      const why = o.error.replace(/\s+/g, " ").slice(0, 300);
      lines.push(`|   ↳ ${why} | | | | |${baseline ? " |" : ""}`);
    }
  }
  return lines;
}

type Check = [label: string, value: number | undefined, verdict: string];

function ratioChecks(warm: Map<string, Outcome>, first: Map<string, Outcome>): Check[] {
  const med = (m: Map<string, Outcome>, name: string): number | undefined =>
    summarize(m.get(name)?.samples ?? [])?.median;
  const div = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined || b === undefined ? undefined : a / b;
  const atMost = (v: number | undefined, t: number): string =>
    v === undefined ? "n/a" : v <= t ? "PASS" : "MISS";
  const atLeast = (v: number | undefined, t: number): string =>
    v === undefined ? "n/a" : v >= t ? "PASS" : "MISS";
  const api = med(warm, ROW.api);
  const cli = med(warm, ROW.cli);
  const floor = med(warm, ROW.floor);
  const podman = med(warm, ROW.podman);
  const apiOverFloor = div(api, floor);
  const podmanOverApi = div(podman, api);
  const firstRatio = div(med(first, ROW.podmanFirst), med(first, ROW.oursFirst));
  return [
    [
      `ours (API) / bare crun — target ≤ ${TARGET.warmOverFloor}×`,
      apiOverFloor,
      atMost(apiOverFloor, TARGET.warmOverFloor),
    ],
    [`ours (API, image already mounted) / bare crun`, div(med(warm, ROW.apiHeld), floor), "info"],
    [`ours (CLI) / bare crun`, div(cli, floor), cli === undefined ? "CLI not built" : "info"],
    [
      `podman / ours (API) — target ≥ ${TARGET.podmanOverWarm}×`,
      podmanOverApi,
      atLeast(podmanOverApi, TARGET.podmanOverWarm),
    ],
    [`podman / ours (CLI)`, div(podman, cli), "info"],
    [
      `podman first use / ours first use — target ≥ ${TARGET.podmanOverFirstUse}×`,
      firstRatio,
      atLeast(firstRatio, TARGET.podmanOverFirstUse),
    ],
  ];
}

function diskLines(f: Footprints): string[] {
  const row = (label: string, d: DiskUse): string =>
    `| ${label} | ${d.apparent} | ${d.fileBytes} | ${d.allocated} |`;
  return [
    "| what | apparent bytes (lstat, dirs too) | file + symlink bytes | allocated bytes (du -sk) |",
    "|---|--:|--:|--:|",
    row("openshell-nix: the sandbox's directory", f.oursSandboxDir),
    row("openshell-nix: Δ whole state dir (incl. SQLite WAL)", f.oursStateDelta),
    row("podman: Δ storage (root + runroot) after `podman create`", f.podmanStorageDelta),
  ];
}

interface ClosureFacts {
  paths: number;
  narBytes: number;
  apparentBytes: number;
}

async function closureFacts(closure: readonly string[]): Promise<ClosureFacts> {
  const sizes = (await runCommand(["nix-store", "--query", "--size", ...closure])).stdout
    .split("\n")
    .filter(Boolean);
  return {
    paths: closure.length,
    narBytes: sizes.reduce((a, s) => a + Number(s), 0),
    apparentBytes: walkSizes(closure).apparent,
  };
}

function buildLines(builds: BuildSample[], closure: ClosureFacts, tarMs: number): string[] {
  const build = summarize(builds.map((b) => b.buildMs));
  const ensure = summarize(builds.map((b) => b.ensureMs));
  const bytes = builds[0]?.bytes;
  return [
    `- closure: ${closure.paths} store paths, NAR size ${closure.narBytes} B (${mib(closure.narBytes)}), on disk ${closure.apparentBytes} B apparent (${mib(closure.apparentBytes)})`,
    `- image (erofs, lz4): ${bytes === undefined ? "n/a" : `${bytes} B (${mib(bytes)})`}; build (GC roots, registration, stage, mkfs.erofs) median ${ms(build?.median)} ms, min ${ms(build?.min)} ms; whole ensure() median ${ms(ensure?.median)} ms`,
    `- closure tarball for podman (tar -cf, not counted in podman's figure): ${ms(tarMs)} ms`,
  ];
}

interface Results {
  runs: number;
  firstRuns: number;
  warm: Map<string, Outcome>;
  first: Map<string, Outcome>;
  builds: BuildSample[];
  footprints: Footprints;
  closure: ClosureFacts;
  tarMs: number;
}

async function renderReport(bench: Bench, r: Results): Promise<string[]> {
  const warmRows = [ROW.host, ROW.floor, ROW.api, ROW.apiHeld, ROW.cli, ROW.podman];
  const ratio = (v: number | undefined): string => (v === undefined ? "n/a" : `${v.toFixed(2)}×`);
  return [
    "# openshell-nix container start-up benchmark",
    "",
    ...(await machineFacts(bench)),
    "",
    `## Warm: start → first output line of \`python3 -c 'print(42)'\` (${r.runs} rounds, interleaved, after 1 warm-up)`,
    "",
    ...latencyTable(warmRows, r.warm, ROW.floor),
    "",
    `## First use of a bundle never seen before (fresh state each run, ${r.firstRuns} rounds, interleaved)`,
    "",
    ...latencyTable([ROW.oursFirst, ROW.podmanFirst], r.first),
    "",
    ...buildLines(r.builds, r.closure, r.tarMs),
    "",
    "## Host disk used by one more sandbox before it writes",
    "",
    ...diskLines(r.footprints),
    "",
    "(openshell-nix writes its config.json and root at create; podman writes the OCI config, /etc files and",
    "the container's overlay mount only at start, so its figure after `create` leaves those out.)",
    "",
    "## Ratios (medians) and targets",
    "",
    "| ratio | value | verdict |",
    "|---|--:|---|",
    ...ratioChecks(r.warm, r.first).map(([label, v, verdict]) => `| ${label} | ${ratio(v)} | ${verdict} |`),
  ];
}

// ---------------------------------------------------------------------------------------------
// Main

function parseOptions(): { runs: number } {
  const { values } = parseArgs({ options: { runs: { type: "string", default: String(DEFAULT_RUNS) } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs wants a positive integer, not ${values.runs}`);
  if (runs < DEFAULT_RUNS)
    process.stderr.write(`note: fewer than ${DEFAULT_RUNS} runs is fine for a try, not for the report\n`);
  return { runs };
}

async function setUp(cleanup: CleanupStack): Promise<Bench> {
  const root = mkdtempSync(join(tmpdir(), "osn-bench-"));
  cleanup.push("temporary directory", () => removeTree(root));
  cleanup.push("Nix auto GC roots", () => void removeAutoRoots(root));
  const app = await openApp({ stateDir: join(root, "state"), config: CONFIG });
  cleanup.push("leftover sandboxes", async () => {
    for (const sb of app.service.list()) await app.service.remove(sb.name);
    app.close();
  });
  const bundle = await app.bundles.resolve({ bundle: "demo" });
  const { image } = await app.images.ensure(bundle.toplevels);
  const cgroups = detectCgroupLayout();
  return {
    root,
    app,
    toplevels: bundle.toplevels,
    image,
    env: sandboxEnv(bundle.toplevels),
    cgroups,
    cleanup,
  };
}

async function main(): Promise<void> {
  const { runs } = parseOptions();
  process.on("SIGINT", () => {
    if (interrupted) process.exit(130); // a second ^C: leave now, cleanup or not
    interrupted = true;
    process.stderr.write("interrupted: stopping after the current run, then cleaning up\n");
  });
  const cleanup = new CleanupStack();
  const sweeper = new CgroupSweeper(detectCgroupLayout());
  try {
    process.stderr.write("setting up: demo bundle, warm image, floor, podman storage…\n");
    const bench = await setUp(cleanup);
    sweeper.track(`/openshell-nix/${bench.app.layout.tag}`);
    const floor = await CrunFloor.prepare(bench);
    sweeper.track(floor.cgroupTop);
    const tag = `localhost/osn-bench:${bench.image.key.slice(0, 12)}`;
    const tar = await closureTarball(bench);
    const podman = new PodmanStore(join(bench.root, "podman"), podmanRuntime(bench.cgroups));
    await podman.importTarball(tar.path, tag);
    await settleDisk();

    process.stderr.write(`warm start: ${runs} rounds…\n`);
    const variants = warmVariants(bench, floor, podman, tag);
    const warm = await runInterleaved(variants, runs, 1);
    const firstRuns = Math.max(runs, MIN_FIRST_USE_RUNS);
    process.stderr.write(`first use: ${firstRuns} rounds…\n`);
    const builds: BuildSample[] = [];
    const first = await runInterleaved(firstUseVariants(bench, tar.path, tag, sweeper, builds), firstRuns, 0);
    process.stderr.write("disk footprint…\n");
    const footprints = {
      ...(await oursFootprint(bench.app)),
      podmanStorageDelta: await podmanFootprint(podman, tag, bench.env),
    };
    const closure = await closureFacts(bench.image.closure);

    if (!variants.some((v) => v.name === ROW.cli)) warm.set(ROW.cli, { samples: [], error: "CLI not built" });
    const results = { runs, firstRuns, warm, first, builds, footprints, closure, tarMs: tar.ms };
    process.stdout.write(`${(await renderReport(bench, results)).join("\n")}\n`);
  } finally {
    const errors = await cleanup.run();
    const cgroups = sweeper.sweep();
    for (const e of errors) process.stderr.write(`cleanup: ${e.message}\n`);
    process.stderr.write(`cleaned up (${cgroups} empty cgroups removed)\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
