import { statSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import type { DiskUse } from "./disk-use.js";
import { mib, ms } from "./format.js";
import { latencyTable } from "./latency-table.js";
import { firstLine } from "./machine-facts.js";
import type { Outcome } from "./run-interleaved.js";
import { summarize } from "./summarize.js";
import type { Observed, OursFootprint } from "./vm-api.js";
import type { VmBench } from "./vm-bench.js";
import type { Qcow2Facts } from "./vm-qcow2.js";
import { VM_CPUS, VM_MEMORY_MIB } from "./vm-qemu.js";

/** The variants' names, which are also the rows of the latency table. */
export const VM_ROW = {
  api: "openshell-nix VM (API)",
  floor: "bare qemu (floor)",
  qcow2: "QCOW2 template VM",
} as const;

/** The issue's targets: near the floor, ahead of the QCOW2 template path, far less disk per sandbox. */
const TARGET = { oursOverFloor: 1.2, oursOverQcow2: 1, qcow2DiskOverOurs: 10 };

export interface VmResults {
  runs: number;
  warm: Map<string, Outcome>;
  observed: Observed;
  /** Where the floor's command line differs from the driver's (paths aside); undefined: identical. */
  argvDiff: string | undefined;
  /** Where the floor's spec differs from the driver's (hostname aside); undefined: identical. */
  specDiff: string | undefined;
  qcow2: Qcow2Facts;
  qcow2Disk: { created: DiskUse; booted: DiskUse };
  oursDisk: OursFootprint;
}

const VM_NOTE = `every VM: -M microvm, ${VM_MEMORY_MIB} MiB, ${VM_CPUS} vCPU, PVH boot of vmlinux, the driver's kernel command line`;

const bytes = (n: number): string => `${n} B (${mib(n)})`;

async function header(bench: VmBench, r: VmResults): Promise<string[]> {
  const cpu = cpus();
  const { accel } = bench;
  return [
    `- host: kernel ${release()}, ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; ${await firstLine(["qemu-system-x86_64", "--version"])}; node ${process.version}`,
    `- guest kernel ${bench.assets.release}; ${VM_NOTE}; user-mode network ${r.observed.network ? "on" : "off"} (as the driver's)`,
    `- **accelerator: ${accel.accel.toUpperCase()}**${accel.cpu ? ` (-cpu ${accel.cpu})` : ""} — chooseAccel: ${accel.reason}. Every figure below is ${accel.accel.toUpperCase()}.`,
    `- floor command line vs the driver's (observed in /proc, run directories aside): ${r.argvDiff === undefined ? "identical" : `DIFFERENT — ${r.argvDiff}`}`,
    `- floor guest spec vs the driver's spec.sh (hostname aside): ${r.specDiff === undefined ? "identical" : `DIFFERENT — ${r.specDiff}`}`,
    `- the driver's qemu runs in cgroups ${r.observed.cgroups.length > 0 ? r.observed.cgroups.map((c) => `\`${c}\``).join(", ") : "(none)"}; the floor's and the QCOW2 variant's qemu in none`,
    `- temporary state at ${bench.root}`,
  ];
}

function assetLines(bench: VmBench, q: Qcow2Facts): string[] {
  const size = (p: string): number => statSync(p).size;
  const img = bench.image;
  return [
    "| what | size |",
    "|---|--:|",
    `| vmlinux (uncompressed, PVH) | ${bytes(size(bench.assets.vmlinux))} |`,
    `| initramfs (driver: busybox, modules, init) | ${bytes(size(bench.assets.initrd))} |`,
    `| initramfs (QCOW2 variant: same, ext4-store init) | ${bytes(q.initrdBytes)} |`,
    `| bundle image (erofs lz4, shared by every sandbox of the bundle) | ${bytes(img.bytes)} |`,
    `| QCOW2 template (ext4 of the closure, ${q.files} entries) | ${bytes(q.template.apparent)} apparent, ${bytes(q.template.allocated)} allocated |`,
    `| its ext4 filesystem size | ${bytes(q.ext4Bytes)} |`,
    "",
    `Closure: ${img.closure.length} store paths. QCOW2 template made once (cp -a, mkfs.ext4 -d, qemu-img convert) in ${ms(q.buildMs)} ms, not counted.`,
  ];
}

function diskLines(r: VmResults): string[] {
  const row = (label: string, d: DiskUse): string => `| ${label} | ${d.apparent} | ${d.allocated} |`;
  const o = r.oursDisk;
  return [
    "| what | apparent bytes | allocated bytes (du -k) |",
    "|---|--:|--:|",
    row("openshell-nix: created VM sandbox, its directory", o.created.dir),
    row("  ↳ of which upper.img (sparse ext4)", o.created.upper),
    row("openshell-nix: that sandbox after one boot, its directory", o.booted.dir),
    row("  ↳ of which upper.img", o.booted.upper),
    row("openshell-nix: `run` sandbox (tmpfs upper) while its VM runs", r.observed.runDirUse),
    row("QCOW2: overlay after `qemu-img create`", r.qcow2Disk.created),
    row("QCOW2: overlay after one boot", r.qcow2Disk.booted),
    "",
    `(the created sandbox's workload exited ${o.exitCode}; both also share a per-bundle file: the erofs image or the qcow2 template)`,
  ];
}

type Check = [label: string, value: string, verdict: string];

function checks(r: VmResults): Check[] {
  const med = (name: string): number | undefined => summarize(r.warm.get(name)?.samples ?? [])?.median;
  const div = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined || b === undefined || b === 0 ? undefined : a / b;
  const x = (v: number | undefined): string => (v === undefined ? "n/a" : `${v.toFixed(2)}×`);
  const verdict = (v: number | undefined, ok: (v: number) => boolean): string =>
    v === undefined ? "n/a" : ok(v) ? "PASS" : "MISS";
  const api = med(VM_ROW.api);
  const overFloor = div(api, med(VM_ROW.floor));
  const overQcow2 = div(api, med(VM_ROW.qcow2));
  const o = r.oursDisk;
  const diskCreated = div(r.qcow2Disk.created.allocated, o.created.dir.allocated);
  const diskBooted = div(r.qcow2Disk.booted.allocated, o.booted.dir.allocated);
  const diskRun = div(r.qcow2Disk.created.allocated, r.observed.runDirUse.allocated);
  return [
    [
      `ours (API) / bare qemu — target ≤ ${TARGET.oursOverFloor}×`,
      x(overFloor),
      r.argvDiff === undefined
        ? verdict(overFloor, (v) => v <= TARGET.oursOverFloor)
        : "n/a: the floor's command line is not the driver's",
    ],
    [`ours (API) / QCOW2 template VM — target < 1× (faster)`, x(overQcow2), verdict(overQcow2, (v) => v < 1)],
    [
      `disk per sandbox at creation, QCOW2 overlay / ours (created sandbox dir, allocated) — target ≥ ${TARGET.qcow2DiskOverOurs}× ("far less"; the number is ours)`,
      x(diskCreated),
      verdict(diskCreated, (v) => v >= TARGET.qcow2DiskOverOurs),
    ],
    [`same after one boot each (allocated)`, x(diskBooted), "info"],
    [`QCOW2 overlay at creation / ours \`run\` sandbox dir (allocated)`, x(diskRun), "info"],
  ];
}

/** The whole report, as markdown lines. */
export async function renderVmReport(bench: VmBench, r: VmResults): Promise<string[]> {
  const rows = [VM_ROW.api, VM_ROW.floor, VM_ROW.qcow2];
  return [
    "# openshell-nix microVM start-up benchmark",
    "",
    ...(await header(bench, r)),
    "",
    `## Create → first output line of \`python3 -c 'print(42)'\` (${r.runs} rounds, interleaved, after 1 warm-up)`,
    "",
    ...latencyTable(rows, r.warm, VM_ROW.floor),
    "",
    "- ours: SandboxService.run({kind: vm}) in this process, warm image and boot assets, call → first stdout chunk;",
    "- floor: spawn of qemu with qemuArgv() of the driver's config, spec and argv made before the clock, spawn → first line in the stdout file (polled every 5 ms);",
    "- QCOW2: `qemu-img create` of an overlay on the template (timed) + the same qemu flags with it as the read-write store disk, → first line (polled every 5 ms).",
    "",
    "## Boot assets and images",
    "",
    ...assetLines(bench, r.qcow2),
    "",
    "## Host disk per extra sandbox",
    "",
    ...diskLines(r),
    "",
    "## Ratios (medians) and targets",
    "",
    "| ratio | value | verdict |",
    "|---|--:|---|",
    ...checks(r).map(([label, v, verdict]) => `| ${label} | ${v} | ${verdict} |`),
  ];
}
