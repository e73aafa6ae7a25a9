import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
} from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { type App, openApp } from "../../src/app.js";
import type { Config } from "../../src/config/schema.js";
import { cgroupDirs, detectCgroupLayout } from "../../src/host/cgroups.js";
import { listLoopDevices, readMounts } from "../../src/host/mounts.js";
import { imageFiles } from "../../src/image/lower-mounts.js";
import type { AttachedProcess } from "../../src/sandbox/driver.js";
import type { CreateRequest } from "../../src/sandbox/sandbox-service.js";

/**
 * Why the integration tests cannot run here, or undefined when they can. In CI a missing
 * feature is an error, never a skip: a green run must mean the sandboxes were really tested.
 * `extra` names more tools a test file needs, with how to install them.
 */
export function missingHostFeature(extra?: { tools: string[]; install: string }): string | undefined {
  const why =
    probeHost(
      ["crun", "mkfs.erofs", "nix-store", "nix-build"],
      "run .ci/run, or: apt-get install crun erofs-utils nix-bin",
    ) ?? (extra ? missingTool(extra.tools, extra.install) : undefined);
  if (why && process.env.CI) throw new Error(`CI host cannot run the integration tests: ${why}`);
  return why;
}

function probeHost(tools: string[], install: string): string | undefined {
  if (process.geteuid?.() !== 0) return "needs root (mounts, loop devices, crun)";
  return missingTool(tools, install);
}

function missingTool(tools: string[], install: string): string | undefined {
  for (const bin of tools) {
    try {
      execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    } catch {
      return `needs ${bin} (${install})`;
    }
  }
  return undefined;
}

export async function tempApp(config: Config = {}): Promise<App> {
  const dir = mkdtempSync("/var/tmp/osn-test-");
  return openApp({ stateDir: dir, config });
}

/**
 * Remove what a failed test left (sandboxes, then a reconcile), close the app, then remove its
 * state dir; refuses if anything is still mounted below it.
 */
export async function disposeApp(app: App): Promise<void> {
  for (const sb of app.service.list()) await app.service.remove(sb.name);
  await app.service.reconcile();
  app.close();
  const root = app.layout.root;
  if (readMounts().some((m) => m.mountpoint.startsWith(`${root}/`))) {
    throw new Error(`mounts left under ${root}`);
  }
  rmSync(root, { recursive: true, force: true });
  // The per-state-dir cgroup parents are kept while a state dir lives; this one is gone now.
  for (const dir of cgroupDirs(detectCgroupLayout(), `/openshell-nix/${app.layout.tag}`)) {
    try {
      rmdirSync(dir);
    } catch {
      // never created for this controller, or not empty (a test left something: caught above)
    }
  }
}

export interface RunOutput {
  status: number;
  stdout: string;
  stderr: string;
  firstOutputMs?: number;
}

/** Gather a process's output as text, resolving with its status once it ends. */
export function collect(
  p: { stdout: Readable; stderr: Readable },
  exit: Promise<number>,
): Promise<RunOutput> {
  const out = { stdout: "", stderr: "" };
  p.stdout.on("data", (d: Buffer) => {
    out.stdout += d.toString();
  });
  p.stderr.on("data", (d: Buffer) => {
    out.stderr += d.toString();
  });
  return exit.then((status) => ({ status, ...out }));
}

export async function runCollect(app: App, req: CreateRequest): Promise<RunOutput> {
  let output: Promise<RunOutput> | undefined;
  await app.service.run(req, (p: AttachedProcess) => {
    output = collect(p, p.exit);
    // run() itself reports a failed exit; this copy of it must not count as unhandled.
    output.catch(() => undefined);
  });
  if (!output) throw new Error("run never started");
  return output;
}

export async function execCollect(app: App, name: string, argv: string[]): Promise<RunOutput> {
  const p = await app.service.exec(name, argv, { stdio: "pipe" });
  if (typeof p === "number") throw new Error("expected streams");
  return collect(p, p.exit);
}

export const CLI = new URL("../../dist/src/bin/cli.js", import.meta.url).pathname;

/** Run the built CLI against a state directory. */
export function runCli(stateDir: string, args: string[]): Promise<RunOutput> {
  const p = spawn("node", [CLI, "--state-dir", stateDir, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  return collect(p, new Promise((resolve) => p.on("close", (code) => resolve(code ?? -1))));
}

/**
 * Everything a sandbox could leave on the host, as a comparable snapshot: mounts below the
 * state dir, loop devices backed by its images, crun containers, sandbox dirs, cgroups, and
 * processes that mention the state dir on their command line.
 */
export function hostFootprint(app: App): Record<string, string[]> {
  const root = app.layout.root;
  // Images prebuilt by Nix are symlinks into the store: their loop devices name the store file.
  const images = imageFiles(app.layout.imagesDir);
  const list = (d: string) => (existsSync(d) ? readdirSync(d).sort() : []);
  const procs: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(root)) procs.push(`${pid} ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  const cgroups = cgroupDirs(detectCgroupLayout(), `/openshell-nix/${app.layout.tag}`).flatMap((d) =>
    list(d)
      .filter((e) => existsSync(join(d, e, "cgroup.procs")))
      .map((e) => join(d, e)),
  );
  return {
    mounts: readMounts()
      .filter((m) => m.mountpoint.startsWith(`${root}/`))
      .map((m) => m.mountpoint),
    loops: listLoopDevices()
      .filter((l) => l.backingFile.startsWith(`${root}/`) || images.has(l.backingFile))
      .map((l) => l.device),
    crun: list(app.layout.crunRoot),
    sandboxDirs: list(app.layout.sandboxesDir),
    tmp: list(app.layout.tmpDir),
    cgroups,
    procs,
  };
}

export const EMPTY_FOOTPRINT = {
  mounts: [],
  loops: [],
  crun: [],
  sandboxDirs: [],
  tmp: [],
  cgroups: [],
  procs: [],
};

/** A hash of a tree: names, types, modes, sizes, link targets and file contents. */
export function treeHash(paths: string[]): string {
  const h = createHash("sha256");
  const walk = (p: string) => {
    const st = lstatSync(p);
    h.update(`${p}\0${st.mode}\0`);
    if (st.isSymbolicLink()) h.update(`link:${readlinkSync(p)}\0`);
    else if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
    else h.update(`${st.size}\0`).update(readFileSync(p));
  };
  for (const p of [...paths].sort()) walk(p);
  return h.digest("hex");
}

export function fileSha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}
