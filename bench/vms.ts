/**
 * Start-up benchmark of microVM sandboxes: openshell-nix against the qemu floor and against the
 * alternative the issue names, a QCOW2 template disk per VM. Every variant runs
 * `python3 -c 'print(42)'` from the demo bundle in a fresh VM and is timed to the first line of
 * its output:
 *
 *   openshell-nix VM (API)  SandboxService.run({kind: "vm"}) in this process, image and boot
 *                           assets warm: create, qemu, guest boot, overlay, python, output port;
 *   bare qemu (floor)       qemu spawned directly with the driver's kernel, initramfs, image and
 *                           qemuArgv() command line (checked against the driver's real one);
 *   QCOW2 template VM       a qcow2 overlay made per run on an ext4 template of the same closure
 *                           (made once), booted read-write with the same kernel and flags.
 *
 * It also reports the accelerator (TCG figures are not KVM figures), the boot assets' sizes and
 * the host disk one more sandbox costs. Variants run interleaved (round robin, rotating start).
 *
 * Run as root: node dist/bench/vms.js [--runs N] [--accel auto|tcg|kvm]. Default accel: tcg,
 * because nested KVM guests hang on the CI machines. Everything lives under one temporary
 * directory, removed at the end with every qemu process the benchmark started.
 */
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import type { AccelSetting } from "../src/drivers/vm/accel.js";
import { guestSpec } from "../src/drivers/vm/boot/guest-init.js";
import { detectCgroupLayout } from "../src/host/cgroups.js";
import { CleanupStack } from "../src/process/cleanup-stack.js";
import { CgroupSweeper } from "./lib/cgroup-sweeper.js";
import { finishBench, interruptOnSigint, runBench } from "./lib/run-bench.js";
import { runInterleaved, type Variant } from "./lib/run-interleaved.js";
import { settleDisk } from "./lib/settle-disk.js";
import { observeRun, oursFootprint, timeVmServiceRun } from "./lib/vm-api.js";
import { setUpVmBench } from "./lib/vm-bench.js";
import { QemuFloor } from "./lib/vm-floor.js";
import { Qcow2Template } from "./lib/vm-qcow2.js";
import { argvDifference } from "./lib/vm-qemu.js";
import { renderVmReport, VM_ROW } from "./lib/vm-report.js";

const DEFAULT_RUNS = 10;

function parseOptions(): { runs: number; accel: AccelSetting } {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: String(DEFAULT_RUNS) },
      accel: { type: "string", default: "tcg" },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs wants a positive integer, not ${values.runs}`);
  if (runs < DEFAULT_RUNS)
    process.stderr.write(`note: fewer than ${DEFAULT_RUNS} runs is fine for a try, not for the report\n`);
  const accel = values.accel;
  if (accel !== "auto" && accel !== "tcg" && accel !== "kvm")
    throw new Error(`--accel wants auto, tcg or kvm, not ${accel}`);
  return { runs, accel };
}

/** The first line where two texts differ, or undefined when they are equal. */
function textDifference(a: string, b: string): string | undefined {
  const la = a.split("\n");
  const lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}: ${JSON.stringify(la[i])} vs ${JSON.stringify(lb[i])}`;
  }
  return undefined;
}

async function main(): Promise<void> {
  const { runs, accel } = parseOptions();
  const interrupt = interruptOnSigint();
  const cleanup = new CleanupStack();
  // The driver puts each VM's qemu in a cgroup of its sandbox; sweep what is left empty.
  const sweeper = new CgroupSweeper(detectCgroupLayout());
  try {
    process.stderr.write(`setting up (accel setting ${accel}): demo bundle, warm image, boot assets…\n`);
    const bench = await setUpVmBench(cleanup, accel);
    sweeper.track(`/openshell-nix/${bench.app.layout.tag}`);
    process.stderr.write(`accelerator: ${bench.accel.accel} (${bench.accel.reason})\n`);
    process.stderr.write("one untimed VM run through the service, to observe the driver…\n");
    const observed = await observeRun(bench);
    const floor = QemuFloor.prepare(bench, observed);
    const floorDir = join(bench.root, "floor", "check");
    const argvDiff = argvDifference(observed.argv, observed.sandboxDir, floor.argv(floorDir), floorDir);
    const driverSpec = guestSpec({ hostname: basename(observed.sandboxDir), ...observed.workload });
    const specDiff = textDifference(observed.spec, driverSpec);
    if (argvDiff !== undefined) process.stderr.write(`warning: floor argv differs: ${argvDiff}\n`);
    if (specDiff !== undefined) process.stderr.write(`warning: floor spec differs: ${specDiff}\n`);
    process.stderr.write("making the QCOW2 template (cp -a, mkfs.ext4 -d, qemu-img convert)…\n");
    const qcow2 = await Qcow2Template.prepare(bench, observed);
    await settleDisk();

    process.stderr.write(`start-up: ${runs} rounds of 3 VMs…\n`);
    const variants: Variant[] = [
      { name: VM_ROW.api, sample: () => timeVmServiceRun(bench.app) },
      { name: VM_ROW.floor, sample: () => floor.sample() },
      { name: VM_ROW.qcow2, sample: () => qcow2.sample() },
    ];
    const warm = await runInterleaved(variants, runs, 1, interrupt.signal);
    process.stderr.write("disk per sandbox…\n");
    const oursDisk = await oursFootprint(bench);
    const qcow2Disk = await qcow2.footprint();

    const results = { runs, warm, observed, argvDiff, specDiff, qcow2: qcow2.facts, qcow2Disk, oursDisk };
    process.stdout.write(`${(await renderVmReport(bench, results)).join("\n")}\n`);
  } finally {
    await finishBench(cleanup, sweeper);
  }
}

runBench(main);
