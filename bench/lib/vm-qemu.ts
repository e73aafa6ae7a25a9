import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { AccelChoice } from "../../src/drivers/vm/accel.js";
import type { QemuVmConfig } from "../../src/drivers/vm/qemu/qemu-argv.js";
import { lastLines } from "../../src/process/run-command.js";
import { EXPECTED_OUTPUT } from "./workload.js";

/** A boot that has not printed and ended by then is killed. */
export const BOOT_DEADLINE_MS = 60_000;

/** The driver's defaults when neither the config nor the sandbox's limits say (vm.memory, vm.cpus). */
export const VM_MEMORY_MIB = 512;
export const VM_CPUS = 1;

/** qemu processes this benchmark spawned, so that none outlives it. */
export class QemuTracker {
  private readonly live = new Set<ChildProcess>();

  spawn(argv: readonly string[]): ChildProcess {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error("empty argv");
    // As the driver's attached start: no stdio (qemu writes to the chardev files); stderr kept for errors.
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.live.add(child);
    child.on("close", () => this.live.delete(child));
    return child;
  }

  /** SIGKILL every qemu still running; how many there were. */
  killAll(): number {
    let n = 0;
    for (const child of this.live) {
      if (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")) n++;
    }
    return n;
  }
}

/** The files of one VM run, named as the driver names them in a sandbox directory. */
export interface RunFiles {
  dir: string;
  spec: string;
  console: string;
  stdout: string;
  stderr: string;
  status: string;
  qmp: string;
  control: string;
  exec: { control: string; stdout: string; stderr: string };
}

export function runFiles(dir: string): RunFiles {
  return {
    dir,
    spec: join(dir, "spec.sh"),
    console: join(dir, "console.log"),
    stdout: join(dir, "stdout.log"),
    stderr: join(dir, "stderr.log"),
    status: join(dir, "status"),
    qmp: join(dir, "qmp.sock"),
    control: join(dir, "control.sock"),
    exec: {
      control: join(dir, "exec.sock"),
      stdout: join(dir, "exec-out.sock"),
      stderr: join(dir, "exec-err.sock"),
    },
  };
}

/** The host TSC frequency as the driver reads it (the TCG boot needs it on the command line). */
export function hostTscKhz(): number | undefined {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}

/**
 * The qemuArgv() input of an ephemeral (run) VM sandbox whose files are `files`. `network` is
 * whatever the driver was seen to do (it decides, not the benchmark); the bench then checks the
 * resulting command line against the driver's.
 */
export function runConfig(
  accel: AccelChoice,
  boot: { vmlinux: string; initrd: string },
  image: string,
  files: RunFiles,
  network: boolean,
): QemuVmConfig {
  return {
    accel: accel.accel,
    cpu: accel.cpu,
    memoryMiB: VM_MEMORY_MIB,
    cpus: VM_CPUS,
    vmlinux: boot.vmlinux,
    initrd: boot.initrd,
    tscKhz: hostTscKhz(),
    image,
    // A run sandbox has no writable disk: its upper layer is a tmpfs in the guest.
    upperDisk: undefined,
    specFile: files.spec,
    consoleLog: files.console,
    stdoutFile: files.stdout,
    stderrFile: files.stderr,
    statusFile: files.status,
    qmpSocket: files.qmp,
    controlSocket: files.control,
    execSockets: files.exec,
    network,
  };
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function hasLine(path: string): boolean {
  try {
    return readFileSync(path).includes(0x0a);
  } catch {
    return false;
  }
}

/**
 * Spawn qemu (the clock started at `t0`, before any per-run work the caller counts), poll the
 * stdout file every 5 ms until it holds a complete line, then wait for the VM to end. Returns
 * the milliseconds from t0 to that line once the run printed exactly the expected output and
 * reported status 0; throws otherwise. qemu is killed at the deadline.
 */
export async function bootToFirstLine(
  label: string,
  qemus: QemuTracker,
  argv: readonly string[],
  files: RunFiles,
  t0: number,
): Promise<number> {
  const child = qemus.spawn(argv);
  const stderr: Buffer[] = [];
  child.stderr?.on("data", (b: Buffer) => stderr.push(b));
  let ended = false;
  const exit = new Promise<number>((resolve) => {
    child.on("error", () => resolve(-1));
    child.on("close", (code, signal) => {
      ended = true;
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, BOOT_DEADLINE_MS);
  let firstLineAt: number | undefined;
  try {
    while (!ended) {
      if (hasLine(files.stdout)) {
        firstLineAt = performance.now();
        break;
      }
      await sleep(5);
    }
    const code = await exit;
    const out = readOr(files.stdout);
    const status = readOr(files.status).trim();
    if (timedOut || firstLineAt === undefined || out.trim() !== EXPECTED_OUTPUT || status !== "0") {
      const why = timedOut ? `no end within ${BOOT_DEADLINE_MS / 1000} s` : `qemu exit ${code}`;
      const consoleTail = lastLines(readOr(files.console).replace(/\r/g, ""), 6);
      const qemuErr = lastLines(Buffer.concat(stderr).toString("utf8"), 3);
      throw new Error(
        `${label}: ${why}, stdout ${JSON.stringify(out.slice(0, 200))}, status ${JSON.stringify(status)}, ` +
          `stderr ${JSON.stringify(lastLines(readOr(files.stderr), 3))}, qemu: ${qemuErr}; console: ${consoleTail}`,
      );
    }
    return firstLineAt - t0;
  } finally {
    clearTimeout(timer);
    if (!ended) {
      child.kill("SIGKILL");
      await exit;
    }
  }
}

/** Where two qemu command lines differ once each run's directory is replaced by `<dir>`; none: identical. */
export function argvDifference(
  a: readonly string[],
  aDir: string,
  b: readonly string[],
  bDir: string,
): string | undefined {
  const norm = (argv: readonly string[], dir: string) => argv.map((x) => x.replaceAll(`${dir}/`, "<dir>/"));
  const na = norm(a, aDir);
  const nb = norm(b, bDir);
  for (let i = 0; i < Math.max(na.length, nb.length); i++) {
    if (na[i] !== nb[i]) return `argument ${i}: ${JSON.stringify(na[i])} vs ${JSON.stringify(nb[i])}`;
  }
  return undefined;
}
