import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readText } from "../../common/fs.js";
import { runCommandStatus } from "../../process/run-command.js";
import type { BootAssets } from "./boot/boot-assets.js";
import { guestSpec } from "./boot/guest-init.js";
import { type Accel, type Machine, qemuArgv } from "./qemu/qemu-argv.js";

export type AccelSetting = "auto" | Accel;

export interface AccelChoice {
  accel: Accel;
  /** qemu -cpu model under KVM (the probe finds one that boots). */
  cpu?: string;
  /** Why: for doctor, ls and logs, so nobody mistakes a TCG figure for a KVM one. */
  reason: string;
}

const PROBE_TIMEOUT_MS = 10_000;

/**
 * KVM when it really works. /dev/kvm existing is not enough: on nested hosts it opens fine and
 * the guest then hangs right after the kernel decompresses. So the probe boots the real guest
 * kernel and initramfs under KVM with a spec that exits at once, and takes KVM only if that
 * comes back within the deadline. The verdict is cached per kernel and qemu binary.
 */
export async function chooseAccel(
  setting: AccelSetting,
  assets: BootAssets,
  cacheDir: string,
): Promise<AccelChoice> {
  if (setting === "tcg") return { accel: "tcg", reason: "configured" };
  const usable = kvmDeviceUsable();
  if (setting === "kvm") {
    return { accel: "kvm", reason: usable ? "configured" : "configured (but /dev/kvm is not usable)" };
  }
  if (!usable) return { accel: "tcg", reason: "/dev/kvm missing or not accessible" };
  const cache = join(cacheDir, `kvm-probe-${assets.release}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, "utf8")) as AccelChoice;
  const failures: string[] = [];
  let choice: AccelChoice | undefined;
  // Some nested hosts refuse the guest's ARCH_CAPABILITIES MSR with plain `host`.
  for (const cpu of ["host", "host,-arch-capabilities"]) {
    const outcome = await probeKvm(assets, cacheDir, cpu);
    if (outcome === "booted") {
      choice = { accel: "kvm", cpu, reason: `KVM probe booted the guest (-cpu ${cpu})` };
      break;
    }
    failures.push(`-cpu ${cpu}: ${outcome}`);
  }
  choice ??= { accel: "tcg", reason: `KVM probe failed (${failures.join("; ")})` };
  writeFileSync(cache, JSON.stringify(choice));
  return choice;
}

function kvmDeviceUsable(): boolean {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** "booted", or why not: qemu's own error, or a boot that hung. */
async function probeKvm(assets: BootAssets, cacheDir: string, cpu: string): Promise<string> {
  const dir = join(cacheDir, `kvm-probe-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(
      join(dir, "spec"),
      guestSpec({ hostname: "probe", env: {}, command: ["/probe-exits-at-once"] }),
    );
    // An empty file is a valid (empty) disk: the init stops at the mount, which is enough to know
    // the kernel booted; it reports that on the console.
    writeFileSync(join(dir, "image"), Buffer.alloc(4096));
    const argv = qemuArgv({
      accel: "kvm",
      cpu,
      memoryMiB: 128,
      cpus: 1,
      vmlinux: assets.vmlinux,
      initrd: assets.initrd,
      image: join(dir, "image"),
      specFile: join(dir, "spec"),
      consoleLog: join(dir, "console.log"),
      stdoutFile: join(dir, "out"),
      stderrFile: join(dir, "err"),
      statusFile: join(dir, "status"),
      qmpSocket: join(dir, "qmp.sock"),
      controlSocket: join(dir, "control.sock"),
      network: false,
    });
    const started = Date.now();
    const r = await runCommandStatus(argv, { timeoutMs: PROBE_TIMEOUT_MS });
    if (/OSN-(FAIL|READY|EXIT)/.test(readText(join(dir, "console.log")))) return "booted";
    if (Date.now() - started >= PROBE_TIMEOUT_MS) return `no boot within ${PROBE_TIMEOUT_MS / 1000} s`;
    return r.stderr.trim().split("\n")[0] || `qemu exited ${r.status}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export type MachineSetting = "auto" | Machine;

export interface MachineChoice {
  machine: Machine;
  reason: string;
}

/** microvm where this qemu has it; q35 otherwise, and say so. */
export async function chooseMachine(setting: MachineSetting): Promise<MachineChoice> {
  if (setting !== "auto") return { machine: setting, reason: "configured" };
  const r = await runCommandStatus(["qemu-system-x86_64", "-machine", "help"]);
  return /^microvm\s/m.test(r.stdout)
    ? { machine: "microvm", reason: "available" }
    : { machine: "q35", reason: "this qemu has no microvm machine: falling back to q35 (slower boots)" };
}
