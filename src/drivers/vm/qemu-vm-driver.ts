import { spawn } from "node:child_process";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, OsnError } from "../../common/errors.js";
import { listDir, makeSparseFile, readText } from "../../common/fs.js";
import { joinCgroupArgv, makeCgroup, removeCgroup } from "../../host/cgroup-limits.js";
import type { CgroupLayout } from "../../host/cgroups.js";
import {
  isAlive,
  killGroup,
  killMentioning,
  type ProcessRef,
  processGroup,
  refOf,
  waitDead,
} from "../../host/proc.js";
import type { ImageInfo } from "../../image/image-cache.js";
import { lastLines, runCommand } from "../../process/run-command.js";
import type { AttachedProcess, ExecIo, RuntimeStatus, SandboxDriver } from "../../sandbox/driver.js";
import type { Sandbox } from "../../sandbox/types.js";
import type { StateLayout } from "../../state/layout.js";
import type { Locks } from "../../state/locks.js";
import {
  type AccelChoice,
  type AccelSetting,
  chooseAccel,
  chooseMachine,
  type MachineChoice,
  type MachineSetting,
} from "./accel.js";
import { BootAssetCache, type BootAssets } from "./boot/boot-assets.js";
import { guestSpec } from "./boot/guest-init.js";
import { findGuestKernel } from "./boot/kernel.js";
import { readBootAssets } from "./boot/prebuilt-boot-assets.js";
import { type ExecSockets, vmExec } from "./exec-client.js";
import { qemuArgv } from "./qemu/qemu-argv.js";
import { qmpCommand } from "./qemu/qmp-client.js";
import { FileTail, fileSize } from "./tail-file.js";

export interface VmOptions {
  kernel?: string;
  /** The kernel's modules directory, when not /lib/modules/<release> (NixOS). */
  modules?: string;
  /** Static busybox for the initramfs (default /bin/busybox). */
  busybox?: string;
  /** Kernel modules loaded at boot besides the guest's own (vm.extraModules). */
  extraModules?: string[];
  /** Boot assets prebuilt by `openshell-nix vm boot-assets` (the NixOS module): used as they are. */
  prebuiltBootAssets?: string;
  accel: AccelSetting;
  machine?: MachineSetting;
  memoryMiB: number;
  cpus: number;
  diskBytes: number;
}

/** Files of one VM sandbox under <state>/sandboxes/<name>. */
class VmPaths {
  constructor(readonly dir: string) {}
  get spec(): string {
    return join(this.dir, "spec.sh");
  }
  get console(): string {
    return join(this.dir, "console.log");
  }
  get stdout(): string {
    return join(this.dir, "stdout.log");
  }
  get stderr(): string {
    return join(this.dir, "stderr.log");
  }
  /** The workload's exit status, written by the guest through its status port. */
  get status(): string {
    return join(this.dir, "status");
  }
  /** qemu's own exit status, written by the monitor shell. */
  get qemuExit(): string {
    return join(this.dir, "qemu.exit");
  }
  get qmp(): string {
    return join(this.dir, "qmp.sock");
  }
  get control(): string {
    return join(this.dir, "control.sock");
  }
  /** The writable layer: a sparse ext4 disk that survives stop/start. */
  get exec(): ExecSockets {
    return {
      control: join(this.dir, "exec.sock"),
      stdout: join(this.dir, "exec-out.sock"),
      stderr: join(this.dir, "exec-err.sock"),
    };
  }
  get qemuLog(): string {
    return join(this.dir, "qemu.log");
  }
  get accel(): string {
    return join(this.dir, "accel");
  }
  get disk(): string {
    return join(this.dir, "upper.img");
  }
}

interface BootChoice {
  assets: BootAssets;
  accel: AccelChoice;
  machine: MachineChoice;
}

const BOOT_DEADLINE_MS = { kvm: 20_000, tcg: 90_000 };

/** Memory qemu needs beyond the guest's own (TCG translation cache, buffers, its heap). */
const QEMU_OVERHEAD_MIB = 512;

/**
 * MicroVM sandboxes run by qemu: the bundle image (the same file the container path
 * loop-mounts) as a read-only virtio-blk disk, an overlay inside the guest, the workload's
 * output and status over virtio-serial. The VM outlives the CLI: a monitor shell owns qemu.
 */
export class QemuVmDriver implements SandboxDriver {
  readonly kind = "vm" as const;
  private boot: Promise<BootChoice> | undefined;

  constructor(
    private readonly layout: StateLayout,
    private readonly locks: Locks,
    private readonly options: VmOptions,
    private readonly cgroups: CgroupLayout,
  ) {}

  paths(name: string): VmPaths {
    return new VmPaths(this.layout.sandbox(name));
  }

  logPaths(sandbox: Sandbox): { stdout: string; stderr: string } {
    const p = this.paths(sandbox.name);
    return { stdout: p.stdout, stderr: p.stderr };
  }

  /** Boot assets, the accelerator and the machine type, worked out once per process. */
  bootAssets(progress: (m: string) => void = () => {}): Promise<BootChoice> {
    this.boot ??= (async () => {
      const bootDir = join(this.layout.root, "boot");
      const assets = this.options.prebuiltBootAssets
        ? readBootAssets(this.options.prebuiltBootAssets)
        : await new BootAssetCache(
            bootDir,
            this.locks,
            this.options.busybox,
            this.options.extraModules,
          ).ensure(findGuestKernel(this.options.kernel, undefined, this.options.modules), progress);
      const accel = await chooseAccel(this.options.accel, assets, bootDir);
      const machine = await chooseMachine(this.options.machine ?? "auto");
      return { assets, accel, machine };
    })();
    return this.boot.catch((err) => {
      this.boot = undefined;
      throw err;
    });
  }

  async prepare(sandbox: Sandbox, image: ImageInfo): Promise<void> {
    await this.bootAssets();
    const p = this.paths(sandbox.name);
    mkdirSync(p.dir, { recursive: true });
    writeFileSync(
      p.spec,
      guestSpec({
        hostname: sandbox.name,
        env: sandbox.spec.env,
        command: sandbox.spec.command,
        shell: sandbox.spec.shell,
        envTool: sandbox.spec.envTool,
        links: sandbox.spec.links,
        files: sandbox.spec.files,
      }),
      // It may carry the supervisor's token.
      { mode: 0o600 },
    );
    if (!existsSync(image.path)) throw new OsnError(ErrorCode.INTERNAL, `image ${image.path} vanished`);
    // A `run` sandbox keeps nothing: its writable layer is a tmpfs in the guest.
    if (!sandbox.spec.ephemeral) await makeDisk(p.disk, this.options.diskBytes);
  }

  describe(sandbox: Sandbox): string | undefined {
    return readText(this.paths(sandbox.name).accel).trim() || undefined;
  }

  private cgroupPath(name: string): string {
    return `/openshell-nix/${this.layout.tag}/${name}`;
  }

  /**
   * qemu itself runs in a cgroup of the sandbox: guest memory plus room for qemu's own (TCG's
   * translation cache, device buffers), the vCPUs' worth of CPU when a CPU limit is set.
   */
  private limitedArgv(sandbox: Sandbox, argv: string[], memoryMiB: number): string[] {
    const procs = makeCgroup(this.cgroups, this.cgroupPath(sandbox.name), {
      memoryBytes: (memoryMiB + QEMU_OVERHEAD_MIB) * 2 ** 20,
      pids: 512,
      cpus: sandbox.spec.limits.cpus,
    });
    return joinCgroupArgv(procs, argv);
  }

  private async argv(sandbox: Sandbox): Promise<{ argv: string[]; accel: AccelChoice }> {
    const { assets, accel, machine } = await this.bootAssets();
    const p = this.paths(sandbox.name);
    // Recorded with the sandbox so nobody takes a TCG timing for a KVM one.
    writeFileSync(p.accel, `${accel.accel} (${accel.reason}), ${machine.machine} (${machine.reason})\n`);
    const limits = sandbox.spec.limits;
    const memoryMiB = limits.memoryBytes
      ? Math.max(64, Math.floor(limits.memoryBytes / 2 ** 20))
      : this.options.memoryMiB;
    const argv = qemuArgv({
      accel: accel.accel,
      machine: machine.machine,
      cpu: accel.cpu,
      memoryMiB,
      cpus: limits.cpus ? Math.max(1, Math.ceil(limits.cpus)) : this.options.cpus,
      vmlinux: assets.vmlinux,
      initrd: assets.initrd,
      tscKhz: hostTscKhz(),
      image: this.layout.image(sandbox.imageKey),
      upperDisk: existsSync(p.disk) ? p.disk : undefined,
      specFile: p.spec,
      consoleLog: p.console,
      stdoutFile: p.stdout,
      stderrFile: p.stderr,
      statusFile: p.status,
      qmpSocket: p.qmp,
      controlSocket: p.control,
      execSockets: p.exec,
      network: true,
    });
    return { argv: this.limitedArgv(sandbox, argv, memoryMiB), accel };
  }

  async start(sandbox: Sandbox, onSpawned: (monitor: ProcessRef) => void = () => {}): Promise<ProcessRef> {
    const p = this.paths(sandbox.name);
    const { argv, accel } = await this.argv(sandbox);
    this.clearRunFiles(p);
    // The monitor: a shell in its own session that outlives the CLI and records qemu's status.
    const script = '"$@"\nrc=$?\necho $rc > "$0.tmp" && mv "$0.tmp" "$0"\nexit $rc';
    // qemu's own complaints (memory it cannot get, a locked disk) go to qemu.log for the errors.
    const log = openSync(p.qemuLog, "w");
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn("sh", ["-c", script, p.qemuExit, ...argv], {
        detached: true,
        stdio: ["ignore", "ignore", log],
      });
    } finally {
      closeSync(log);
    }
    child.unref();
    const ref = child.pid === undefined ? undefined : refOf(child.pid);
    if (!ref) throw new OsnError(ErrorCode.RUNTIME_FAILED, `could not start qemu for ${sandbox.name}`);
    onSpawned(ref);
    try {
      await this.waitReady(sandbox, p, accel, () => !isAlive(ref));
    } catch (err) {
      killGroup(ref);
      await waitDead(ref, 5_000);
      await removeCgroup(this.cgroups, this.cgroupPath(sandbox.name));
      throw err;
    }
    return ref;
  }

  async startAttached(sandbox: Sandbox): Promise<AttachedProcess> {
    const p = this.paths(sandbox.name);
    const { argv } = await this.argv(sandbox);
    this.clearRunFiles(p);
    const out = new FileTail(p.stdout, fileSize(p.stdout));
    const err = new FileTail(p.stderr, fileSize(p.stderr));
    // Its own process group: a Ctrl-C at the terminal reaches the CLI, which asks the guest to
    // stop the workload, instead of reaching qemu, which would quit on the spot.
    const log = openSync(p.qemuLog, "w");
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ["ignore", "ignore", log] });
    } finally {
      closeSync(log);
    }
    const { accel } = await this.bootAssets();
    const booted = this.bootWatch(p, accel, child);
    const exit = new Promise<number>((resolve, reject) => {
      child.on("error", (e) =>
        reject(new OsnError(ErrorCode.RUNTIME_FAILED, `qemu: ${e.message}`, { cause: e })),
      );
      child.on("close", async (code) => {
        clearTimeout(booted);
        await Promise.all([out.finish(), err.finish()]);
        const status = workloadStatus(p);
        if (status !== null) return resolve(status);
        reject(
          new OsnError(
            ErrorCode.RUNTIME_FAILED,
            `the VM ended without the workload's status (qemu exit ${code})${consoleTail(p)}`,
          ),
        );
      });
    });
    const monitor = child.pid === undefined ? undefined : refOf(child.pid);
    return {
      stdout: out.stream,
      stderr: err.stream,
      exit,
      monitor,
      kill: (signal = "SIGTERM") => void this.control(p, signal === "SIGKILL" ? "kill" : "stop"),
    };
  }

  status(sandbox: Sandbox): RuntimeStatus {
    if (sandbox.monitor && isAlive(sandbox.monitor)) return { running: true };
    return { running: false, exitCode: workloadStatus(this.paths(sandbox.name)) };
  }

  /** A boot deadline for attached runs: a guest that never reports ready is killed. */
  private bootWatch(p: VmPaths, accel: AccelChoice, child: ReturnType<typeof spawn>): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (readText(p.console).includes("OSN-READY")) return;
      appendFileSync(
        p.qemuLog,
        `openshell-nix: no boot within ${BOOT_DEADLINE_MS[accel.accel] / 1000} s (${accel.accel}); killed\n`,
      );
      child.kill("SIGKILL");
    }, BOOT_DEADLINE_MS[accel.accel]);
    timer.unref();
    return timer;
  }

  /**
   * Graceful first: the guest init gets "stop" (SIGTERM to the workload), then "kill"; either
   * way it syncs and unmounts the writable disk before the VM powers off. qemu is killed only
   * if the guest does not finish within its deadline.
   */
  async stop(sandbox: Sandbox, graceMs: number): Promise<void> {
    await this.halt(sandbox, graceMs);
    await removeCgroup(this.cgroups, this.cgroupPath(sandbox.name));
  }

  private async halt(sandbox: Sandbox, graceMs: number): Promise<void> {
    const monitor = sandbox.monitor;
    const p = this.paths(sandbox.name);
    if (!monitor || !isAlive(monitor)) {
      // A monitor killed on its own (a service manager that killed the daemon's cgroup) can
      // leave its qemu running: nothing may outlive the sandbox's stop.
      await killMentioning(`${p.dir}/`);
      return;
    }
    // Before OSN-READY no workload runs and nothing is written yet: there is nothing to save.
    if (readText(p.console).includes("OSN-READY")) {
      const control = await openControl(p);
      try {
        control?.write("stop\n");
        if (control && (await waitDead(monitor, graceMs))) return;
        control?.write("kill\n");
        if (control && (await waitDead(monitor, 10_000))) return;
      } finally {
        control?.destroy();
      }
    }
    // The guest does not answer: have qemu quit cleanly (it closes its disk images), then kill.
    if ((await qmpCommand(p.qmp, "quit")) && (await waitDead(monitor, 5_000))) return;
    killGroup(monitor);
    try {
      process.kill(monitor.pid, "SIGKILL");
    } catch {
      // gone
    }
    await waitDead(monitor, 5_000);
  }

  /** One exec at a time per VM (the agent serves one request at a time). */
  async exec(sandbox: Sandbox, argv: string[], io: ExecIo): Promise<AttachedProcess | number> {
    if (!this.status(sandbox).running) {
      throw new OsnError(ErrorCode.INVALID_STATE, `sandbox ${sandbox.name} is not running`);
    }
    const p = this.paths(sandbox.name);
    const spec = guestSpec({ hostname: sandbox.name, env: sandbox.spec.env, command: argv });
    const release = await this.locks.acquire(`vm-exec:${sandbox.name}`, 10 * 60_000);
    let attached: AttachedProcess;
    try {
      attached = await vmExec(p.exec, spec);
    } catch (err) {
      release();
      throw err;
    }
    void attached.exit.finally(release).catch(() => undefined);
    if (io.stdio === "pipe") return attached;
    attached.stdout.pipe(process.stdout, { end: false });
    attached.stderr.pipe(process.stderr, { end: false });
    return attached.exit;
  }

  async remove(sandbox: Sandbox): Promise<void> {
    await this.stop(sandbox, 0);
    rmSync(this.paths(sandbox.name).dir, { recursive: true, force: true });
  }

  /** qemu processes of this state directory that belong to no known sandbox. */
  async cleanOrphans(isKnown: (name: string) => boolean): Promise<string[]> {
    const actions: string[] = [];
    const marker = `${this.layout.sandboxesDir}/`;
    for (const pid of listDir("/proc").filter((e) => /^\d+$/.test(e))) {
      const cmd = readText(`/proc/${pid}/cmdline`).split("\0");
      if (!cmd[0]?.endsWith("qemu-system-x86_64")) continue;
      const spec = cmd.find((a) => a.includes(marker) && a.includes("spec.sh"));
      const name = spec?.slice(spec.indexOf(marker) + marker.length).split("/")[0];
      if (!name || isKnown(name)) continue;
      const ref = refOf(Number(pid));
      if (ref) {
        // Its whole process group: the monitor shell too, unless that group is our own.
        const group = processGroup(ref.pid);
        const monitor = group !== undefined && group !== processGroup(process.pid) ? refOf(group) : undefined;
        if (monitor) killGroup(monitor);
        process.kill(ref.pid, "SIGKILL");
        await waitDead(ref, 5_000);
        if (monitor) await waitDead(monitor, 5_000);
      }
      await removeCgroup(this.cgroups, this.cgroupPath(name));
      actions.push(`killed orphan qemu of ${name}`);
    }
    return actions;
  }

  private clearRunFiles(p: VmPaths): void {
    for (const f of [p.status, p.qemuExit, p.console, p.qmp, p.control, ...Object.values(p.exec)]) {
      rmSync(f, { force: true });
    }
  }

  /** Race: the guest reports OSN-READY / it reports a failure or qemu ends / the deadline. */
  private async waitReady(
    sandbox: Sandbox,
    p: VmPaths,
    accel: AccelChoice,
    ended: () => boolean,
  ): Promise<void> {
    const deadline = Date.now() + BOOT_DEADLINE_MS[accel.accel];
    while (Date.now() < deadline) {
      const console = readText(p.console);
      if (console.includes("OSN-READY")) return;
      if (console.includes("OSN-FAIL") || ended()) {
        throw new OsnError(ErrorCode.RUNTIME_FAILED, `VM ${sandbox.name} failed to boot${consoleTail(p)}`);
      }
      await sleep(20);
    }
    throw new OsnError(
      ErrorCode.TIMEOUT,
      `VM ${sandbox.name} did not boot within ${BOOT_DEADLINE_MS[accel.accel] / 1000} s (${accel.accel}: ${accel.reason})`,
    );
  }

  /**
   * Send a request to the guest init and keep the connection open until qemu ends: qemu holds
   * what the host wrote until the guest reads it, but drops it if the host hangs up first.
   */
  private async control(p: VmPaths, request: "stop" | "kill"): Promise<void> {
    const socket = await openControl(p);
    socket?.write(`${request}\n`);
  }
}

/** The host end of a VM's control port, or undefined when the VM is gone. */
function openControl(p: VmPaths): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(p.control);
    socket.once("connect", () => resolve(socket));
    socket.once("error", () => resolve(undefined));
    socket.unref();
  });
}

async function makeDisk(path: string, bytes: number): Promise<void> {
  makeSparseFile(path, bytes);
  // Sparse: the host pays for what the guest writes. Lazy init keeps mkfs to milliseconds, and
  // without the blocks reserved for growing the file system a new disk costs ~200 KiB, not 2 MiB.
  await runCommand([
    "mkfs.ext4",
    "-q",
    "-F",
    "-m",
    "0",
    "-O",
    "^resize_inode",
    "-E",
    "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
    path,
  ]);
}

let tscKhz: number | undefined;
function hostTscKhz(): number | undefined {
  if (tscKhz === undefined) {
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
    tscKhz = mhz ? Math.round(Number(mhz) * 1000) : undefined;
  }
  return tscKhz;
}

function consoleTail(p: VmPaths): string {
  const qemu = lastLines(readText(p.qemuLog), 4);
  const lines = lastLines(readText(p.console).replace(/\r/g, ""), 6);
  return `${qemu ? `; qemu: ${qemu}` : ""}${lines ? `; console:\n${lines}` : ""}`;
}

/**
 * The workload's exit status as the guest reported it: one number, 0–255. Root in the guest
 * can write to the status port itself, so anything else is no status at all.
 */
function workloadStatus(p: VmPaths): number | null {
  const text = readText(p.status).trim();
  return /^\d{1,3}$/.test(text) && Number(text) <= 255 ? Number(text) : null;
}
