import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeSparseFile } from "../../src/common/fs.js";
import { GUEST_BUSYBOX, GUEST_MODULES } from "../../src/drivers/vm/boot/boot-assets.js";
import { type CpioEntry, writeCpio } from "../../src/drivers/vm/boot/cpio.js";
import { GUEST_INIT, guestSpec } from "../../src/drivers/vm/boot/guest-init.js";
import { findGuestKernel } from "../../src/drivers/vm/boot/kernel.js";
import { parseModulesDep, resolveModules } from "../../src/drivers/vm/boot/modules.js";
import { qemuArgv } from "../../src/drivers/vm/qemu/qemu-argv.js";
import { runCommand } from "../../src/process/run-command.js";
import { type DiskUse, diskUse } from "./disk-use.js";
import type { VmBench } from "./vm-bench.js";
import type { RunShape } from "./vm-floor.js";
import { bootToFirstLine, runConfig, runFiles } from "./vm-qemu.js";

const MiB = 2 ** 20;

/** The driver's guest init, changed to take the store from a writable ext4 disk: no erofs, no overlay. */
export function qcow2GuestInit(init: string = GUEST_INIT): string {
  const swap = (text: string, pattern: RegExp, line: string): string => {
    const hits = text.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
    if (hits !== 1) throw new Error(`the guest init changed: ${hits} lines match ${pattern} (want 1)`);
    return text.replace(new RegExp(pattern.source, "m"), line);
  };
  const ext4 = swap(
    init,
    /^mount -t erofs .*\/dev\/vda \/image.*$/,
    'mount -t ext4 /dev/vda /image || fail "cannot mount the store disk"',
  );
  // The qcow2 overlay is the copy-on-write layer: the store is the disk's own nix/store, read-write.
  return swap(
    ext4,
    /^mount -t overlay .*\/newroot\/nix\/store.*$/,
    'mount --bind /image/nix/store /newroot/nix/store || fail "cannot bind the store"',
  );
}

/** What making the template cost and weighs, for the report. */
export interface Qcow2Facts {
  buildMs: number;
  files: number;
  ext4Bytes: number;
  template: DiskUse;
  initrdBytes: number;
}

/**
 * The alternative of the issue: a VM template disk. Made once, outside the clock: the closure
 * copied (`cp -a`) under nix/store in a staging directory, an ext4 filesystem made from it
 * (`mkfs.ext4 -d`, fully initialised so no guest pays lazy init), converted to a qcow2 template.
 * Per sandbox: a fresh qcow2 overlay backed by the template (timed), attached read-write as the
 * store disk, booted with the same kernel and qemu flags by an initramfs whose init mounts it as
 * ext4 (the driver's modules and busybox; only the two store lines of its init differ).
 */
export class Qcow2Template {
  private runs = 0;

  private constructor(
    private readonly bench: VmBench,
    private readonly shape: RunShape,
    private readonly dir: string,
    readonly template: string,
    private readonly initrd: string,
    readonly facts: Qcow2Facts,
  ) {}

  static async prepare(bench: VmBench, shape: RunShape): Promise<Qcow2Template> {
    const dir = join(bench.root, "qcow2");
    const stage = join(dir, "stage");
    const store = join(stage, "nix", "store");
    mkdirSync(store, { recursive: true });
    const t0 = performance.now();
    await runCommand(["cp", "-a", ...bench.image.closure, store]);
    const files = readdirSync(stage, { recursive: true }).length;
    const stagedKiB = Number((await runCommand(["du", "-sk", stage])).stdout.split(/\s+/)[0]);
    // Room for the data, the journal and the metadata; inodes for every file with slack.
    const ext4Bytes = Math.ceil((stagedKiB * 1024 * 1.3) / MiB + 64) * MiB;
    const raw = join(dir, "template.ext4");
    makeSparseFile(raw, ext4Bytes);
    await runCommand([
      "mkfs.ext4",
      "-q",
      "-F",
      "-m",
      "0",
      "-N",
      String(files * 2 + 1024),
      "-E",
      "lazy_itable_init=0,lazy_journal_init=0,nodiscard",
      "-d",
      stage,
      raw,
    ]);
    const template = join(dir, "template.qcow2");
    await runCommand(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, template]);
    const buildMs = performance.now() - t0;
    rmSync(raw);
    rmSync(stage, { recursive: true, force: true });
    const initrd = join(dir, "initrd-qcow2.cpio");
    writeFileSync(initrd, qcow2Initrd(bench.app.config.vm?.kernel, bench.assets.release));
    const facts: Qcow2Facts = {
      buildMs,
      files,
      ext4Bytes,
      template: await diskUse([template]),
      initrdBytes: readFileSync(initrd).length,
    };
    return new Qcow2Template(bench, shape, dir, template, initrd, facts);
  }

  /** `qemu-img create` of an overlay backed by the template: the per-sandbox disk. */
  async createOverlay(path: string): Promise<void> {
    await runCommand(["qemu-img", "create", "-q", "-f", "qcow2", "-b", this.template, "-F", "qcow2", path]);
  }

  /** The command line of a run in `dir` whose store disk is `overlay`. */
  argv(dir: string, overlay: string): string[] {
    const { accel, assets } = this.bench;
    const argv = qemuArgv(
      runConfig(
        accel,
        { vmlinux: assets.vmlinux, initrd: this.initrd },
        overlay,
        runFiles(dir),
        this.shape.network,
      ),
    );
    const at = argv.findIndex((a) => a.startsWith("id=image,"));
    if (at < 0) throw new Error("qemuArgv() has no drive with id=image any more");
    argv[at] = `id=image,file=${overlay.replaceAll(",", ",,")},format=qcow2,if=none,discard=unmap`;
    return argv;
  }

  /** One boot with a fresh overlay in its own directory; the clock includes `qemu-img create`. */
  async sample(): Promise<number> {
    return this.boot(`run-${this.runs++}`, true);
  }

  /** Boot once untimed and report the overlay's size after creation and after the boot. */
  async footprint(): Promise<{ created: DiskUse; booted: DiskUse }> {
    let created: DiskUse | undefined;
    let booted: DiskUse | undefined;
    await this.boot("footprint", false, async (overlay, phase) => {
      if (phase === "created") created = await diskUse([overlay]);
      else booted = await diskUse([overlay]);
    });
    if (!created || !booted) throw new Error("the QCOW2 footprint boot measured nothing");
    return { created, booted };
  }

  private async boot(
    name: string,
    timed: boolean,
    measure?: (overlay: string, phase: "created" | "booted") => Promise<void>,
  ): Promise<number> {
    const files = runFiles(join(this.dir, name));
    const overlay = join(files.dir, "overlay.qcow2");
    mkdirSync(files.dir);
    try {
      writeFileSync(files.spec, guestSpec({ hostname: "qcow2", ...this.shape.workload }));
      const argv = this.argv(files.dir, overlay);
      let t0 = performance.now();
      await this.createOverlay(overlay);
      if (measure) await measure(overlay, "created");
      if (!timed) t0 = performance.now();
      const ms = await bootToFirstLine("QCOW2 template VM", this.bench.qemus, argv, files, t0);
      if (measure) await measure(overlay, "booted");
      return ms;
    } finally {
      rmSync(files.dir, { recursive: true, force: true });
    }
  }
}

/** The driver's initramfs layout (busybox, GUEST_MODULES in load order, /init), with the ext4-store init. */
function qcow2Initrd(configuredKernel: string | undefined, release: string): Buffer {
  const kernel = findGuestKernel(configuredKernel);
  if (kernel.release !== release) {
    throw new Error(`guest kernel ${kernel.release} is not the driver's (${release})`);
  }
  let builtin = "";
  try {
    builtin = readFileSync(join(kernel.modulesDir, "modules.builtin"), "utf8");
  } catch {
    // none: every module is loadable
  }
  const index = parseModulesDep(readFileSync(join(kernel.modulesDir, "modules.dep"), "utf8"), builtin);
  const modules = resolveModules(index, GUEST_MODULES);
  const entries: CpioEntry[] = [
    ...["bin", "lib", "lib/modules", "proc", "sys", "dev", "tmp"].map((d) => ({
      path: d,
      type: "dir" as const,
    })),
    { path: "bin/busybox", type: "file", mode: 0o755, data: readFileSync(GUEST_BUSYBOX) },
    { path: "init", type: "file", mode: 0o755, data: Buffer.from(qcow2GuestInit()) },
    { path: "modules.order", type: "file", data: Buffer.from(`${modules.join("\n")}\n`) },
    ...modules.map((m) => ({
      path: `lib/modules/${m}.ko`,
      type: "file" as const,
      data: readFileSync(join(kernel.modulesDir, index.paths.get(m) as string)),
    })),
  ];
  return writeCpio(entries);
}
