import type { Bench } from "./bench.js";
import type { ClosureFacts } from "./closure-facts.js";
import type { DiskUse } from "./disk-use.js";
import type { BuildSample } from "./first-use-variants.js";
import type { Footprints } from "./footprints.js";
import { mib, ms } from "./format.js";
import { latencyTable } from "./latency-table.js";
import { machineFacts } from "./machine-facts.js";
import { ratioChecks } from "./ratio-checks.js";
import { ROW } from "./rows.js";
import type { Outcome } from "./run-interleaved.js";
import { summarize } from "./summarize.js";

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

/** Everything the benchmark measured, for renderReport. */
export interface Results {
  runs: number;
  firstRuns: number;
  warm: Map<string, Outcome>;
  first: Map<string, Outcome>;
  builds: BuildSample[];
  footprints: Footprints;
  closure: ClosureFacts;
  tarMs: number;
}

/** The whole report, as markdown lines. */
export async function renderReport(bench: Bench, r: Results): Promise<string[]> {
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
    ...latencyTable(
      [ROW.oursFirst, ...(r.first.has(ROW.oursPrebuilt) ? [ROW.oursPrebuilt] : []), ROW.podmanFirst],
      r.first,
    ),
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
