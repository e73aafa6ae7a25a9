import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type GuestSpecInput, guestSpec } from "../../src/drivers/vm/boot/guest-init.js";
import { qemuArgv } from "../../src/drivers/vm/qemu/qemu-argv.js";
import type { VmBench } from "./vm-bench.js";
import { bootToFirstLine, runConfig, runFiles } from "./vm-qemu.js";

/** The workload as the service hands it to the driver (env with PATH, shell, env tool, command). */
export type Workload = Omit<GuestSpecInput, "hostname">;

/** What the driver was seen to do in a run: the workload it was given, and whether the VM had a network. */
export interface RunShape {
  workload: Workload;
  network: boolean;
}

/**
 * The floor: qemu started directly, with the kernel, initramfs and image the driver uses and the
 * command line qemuArgv() builds for a run sandbox. The spec file and the argv are made before
 * the clock starts; the timed path is spawn → first line in the stdout file.
 */
export class QemuFloor {
  private runs = 0;

  constructor(
    private readonly bench: VmBench,
    private readonly shape: RunShape,
    private readonly dir: string,
  ) {}

  static prepare(bench: VmBench, shape: RunShape): QemuFloor {
    const dir = join(bench.root, "floor");
    mkdirSync(dir, { recursive: true });
    return new QemuFloor(bench, shape, dir);
  }

  /** The floor's command line for a run in `dir` (also what it is checked against). */
  argv(dir: string): string[] {
    const { accel, assets, image } = this.bench;
    return qemuArgv(runConfig(accel, assets, image.path, runFiles(dir), this.shape.network));
  }

  async sample(): Promise<number> {
    const files = runFiles(join(this.dir, `run-${this.runs++}`));
    mkdirSync(files.dir);
    try {
      writeFileSync(files.spec, guestSpec({ hostname: "floor", ...this.shape.workload }));
      const argv = this.argv(files.dir);
      const t0 = performance.now();
      return await bootToFirstLine("bare qemu", this.bench.qemus, argv, files, t0);
    } finally {
      rmSync(files.dir, { recursive: true, force: true });
    }
  }
}
