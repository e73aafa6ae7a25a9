import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { App } from "../../src/app.js";
import { isAlive, type ProcessRef } from "../../src/host/proc.js";
import type { AttachedProcess } from "../../src/sandbox/driver.js";
import type { CreateRequest } from "../../src/sandbox/sandbox-service.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { type DiskUse, diskUse } from "./disk-use.js";
import { checkedLatency, LineWatch } from "./latency.js";
import type { VmBench } from "./vm-bench.js";
import type { RunShape } from "./vm-floor.js";
import { BOOT_DEADLINE_MS } from "./vm-qemu.js";
import { COMMAND } from "./workload.js";

/** The request every API sample makes: a VM run of the demo bundle's python. */
export const VM_REQUEST: CreateRequest = { kind: "vm", bundle: "demo", command: COMMAND };

function kill(ref: ProcessRef | undefined): void {
  if (!ref || !isAlive(ref)) return;
  try {
    process.kill(ref.pid, "SIGKILL");
  } catch {
    // gone
  }
}

/**
 * SandboxService.run of a VM in this process, timed from the call to the first stdout line; its
 * qemu is killed if the run has not ended by the deadline. `onStarted` (untimed runs only: it
 * would run inside the clock) sees the started workload and its sandbox.
 */
export async function timeVmServiceRun(
  app: App,
  onStarted?: (p: AttachedProcess, sb: Sandbox) => void,
): Promise<number> {
  const io: { out?: LineWatch; err?: LineWatch; monitor?: ProcessRef; timedOut?: boolean } = {};
  const timer = setTimeout(() => {
    io.timedOut = true;
    kill(io.monitor);
  }, BOOT_DEADLINE_MS);
  const t0 = performance.now();
  try {
    const status = await app.service.run(VM_REQUEST, (p, sb) => {
      io.out = new LineWatch(p.stdout);
      io.err = new LineWatch(p.stderr);
      io.monitor = p.monitor;
      onStarted?.(p, sb);
    });
    if (!io.out || !io.err) throw new Error("the service never reported the started workload");
    return checkedLatency("openshell-nix VM", t0, status, io.out, io.err);
  } catch (err) {
    if (io.timedOut) throw new Error(`openshell-nix VM: killed after ${BOOT_DEADLINE_MS / 1000} s`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** What an untimed run showed: the driver's qemu command line, spec and workload, and its directory's size. */
export interface Observed extends RunShape {
  sandboxDir: string;
  /** qemu's own command line (after any wrapper the driver starts it through has exec'd it). */
  argv: string[];
  /** qemu's cgroups (v1 controllers or the v2 path) below openshell-nix, if the driver put it in any. */
  cgroups: string[];
  spec: string;
  /** The run sandbox's directory while its VM runs (tmpfs upper layer: no disk). */
  runDirUse: DiskUse;
  ms: number;
}

const QEMU = "qemu-system-x86_64";

function cmdline(pid: number): string[] {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (argv.at(-1) === "") argv.pop();
    return argv;
  } catch {
    return [];
  }
}

/** Wait for `pid` to be qemu (the driver may start it through a shell that execs it), then read it. */
async function watchQemu(pid: number): Promise<{ argv: string[]; cgroups: string[] }> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const argv = cmdline(pid);
    if (argv[0]?.endsWith(QEMU)) {
      let cgroups: string[] = [];
      try {
        cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8")
          .split("\n")
          .filter((l) => l.includes("/openshell-nix/"));
      } catch {
        // gone already
      }
      return { argv, cgroups };
    }
    await sleep(2);
  }
  throw new Error(`process ${pid} never became ${QEMU} (saw ${JSON.stringify(cmdline(pid).slice(0, 4))})`);
}

/** One untimed run that records what the driver did, for the floor to copy and be checked against. */
export async function observeRun(bench: VmBench): Promise<Observed> {
  let seen: Omit<Observed, "argv" | "cgroups" | "network" | "runDirUse" | "ms"> | undefined;
  let qemu: Promise<{ argv: string[]; cgroups: string[] }> | undefined;
  let use: Promise<DiskUse> | undefined;
  const ms = await timeVmServiceRun(bench.app, (p, sb) => {
    const dir = bench.app.layout.sandbox(sb.name);
    const pid = p.monitor?.pid;
    if (pid !== undefined) {
      qemu = watchQemu(pid);
      qemu.catch(() => undefined); // awaited below
    }
    const { env, command, shell, envTool } = sb.spec;
    seen = {
      sandboxDir: dir,
      spec: readFileSync(bench.driver.paths(sb.name).spec, "utf8"),
      workload: { env, command, shell, envTool },
    };
    use = diskUse([dir]);
  });
  if (!seen || !use || !qemu) throw new Error("could not observe the driver's qemu");
  const { argv, cgroups } = await qemu;
  return { ...seen, argv, cgroups, network: argv.includes("-netdev"), runDirUse: await use, ms };
}

/** A created (not run) VM sandbox's directory: after create, and after one boot of its workload. */
export interface OursFootprint {
  created: { dir: DiskUse; upper: DiskUse };
  booted: { dir: DiskUse; upper: DiskUse };
  exitCode: number | null;
}

export async function oursFootprint(bench: VmBench): Promise<OursFootprint> {
  const { app, driver } = bench;
  const sb = await app.service.create(VM_REQUEST);
  try {
    const dir = app.layout.sandbox(sb.name);
    const upper = driver.paths(sb.name).disk;
    const measure = async () => ({ dir: await diskUse([dir]), upper: await diskUse([upper]) });
    const created = await measure();
    await app.service.start(sb.name);
    const deadline = Date.now() + BOOT_DEADLINE_MS;
    while (app.service.get(sb.name).state === "running") {
      if (Date.now() > deadline) throw new Error(`VM sandbox ${sb.name} still running after its deadline`);
      await sleep(100);
    }
    const booted = await measure();
    return { created, booted, exitCode: app.service.get(sb.name).exitCode };
  } finally {
    await app.service.remove(sb.name);
  }
}
