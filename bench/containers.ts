/**
 * Start-up benchmark of container sandboxes: where openshell-nix sits between the crun floor and
 * podman. Every variant runs `python3 -c 'print(42)'` from the demo bundle and is timed from its
 * start to the first line on stdout:
 *
 *   host python          the bundle's python on the host: no sandbox at all;
 *   bare crun            the floor: `crun run` of a bundle directory prepared before the clock
 *                        starts, with the config.json openshell-nix writes (same mounts, seccomp,
 *                        capabilities, cgroups) and the erofs image mounted once as overlay lower;
 *   openshell-nix (API)  SandboxService.run in this process: the daemon path, no Node start-up;
 *   openshell-nix (CLI)  the CLI as a user types it, Node start-up included;
 *   podman run           podman with private storage, its image imported from a tarball of the
 *                        same closure.
 *
 * Then the first use of a bundle never seen before, each run on fresh state: image build + first
 * run for openshell-nix, the same with the image prebuilt by nix/bundle-image.nix (what a NixOS
 * host has after nixos-rebuild), `podman import` + first run for podman. Variants run interleaved (round
 * robin, with a rotating start) so that drift of the machine affects all of them alike.
 *
 * Run as root: node dist/bench/containers.js [--runs N]. Everything it creates lives under one
 * temporary directory and is removed at the end, as are the cgroups and Nix GC roots it causes.
 *
 * This file is the entry: options, the order of the phases, and cleanup. The pieces are in lib/.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { detectCgroupLayout } from "../src/host/cgroups.js";
import { CleanupStack } from "../src/process/cleanup-stack.js";
import { setUpBench } from "./lib/bench.js";
import { CgroupSweeper } from "./lib/cgroup-sweeper.js";
import { closureFacts } from "./lib/closure-facts.js";
import { closureTarball } from "./lib/closure-tarball.js";
import { CrunFloor } from "./lib/crun-floor.js";
import { type BuildSample, firstUseVariants, nixPrebuiltImage } from "./lib/first-use-variants.js";
import { oursFootprint, podmanFootprint } from "./lib/footprints.js";
import { PodmanStore, podmanRuntime } from "./lib/podman-store.js";
import { renderReport } from "./lib/render-report.js";
import { ROW } from "./lib/rows.js";
import { finishBench, interruptOnSigint, runBench } from "./lib/run-bench.js";
import { runInterleaved } from "./lib/run-interleaved.js";
import { settleDisk } from "./lib/settle-disk.js";
import { warmVariants } from "./lib/warm-variants.js";

const DEFAULT_RUNS = 10;
const MIN_FIRST_USE_RUNS = 5;

function parseOptions(): { runs: number } {
  const { values } = parseArgs({ options: { runs: { type: "string", default: String(DEFAULT_RUNS) } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs wants a positive integer, not ${values.runs}`);
  if (runs < DEFAULT_RUNS)
    process.stderr.write(`note: fewer than ${DEFAULT_RUNS} runs is fine for a try, not for the report\n`);
  return { runs };
}

/** The built CLI next to this script's build output, if `npm run build` has made one. */
function cliPath(): string | undefined {
  const candidates = ["../src/bin/cli.js", "../bin/cli.js"].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  return candidates.find((p) => existsSync(p));
}

async function main(): Promise<void> {
  const { runs } = parseOptions();
  const interrupt = interruptOnSigint();
  const cleanup = new CleanupStack();
  const sweeper = new CgroupSweeper(detectCgroupLayout());
  try {
    process.stderr.write("setting up: demo bundle, warm image, floor, podman storage…\n");
    const bench = await setUpBench(cleanup);
    // The image nixos-rebuild would have built, made now like the other set-up work.
    const prebuilt = nixPrebuiltImage(bench);
    sweeper.track(`/openshell-nix/${bench.app.layout.tag}`);
    const floor = await CrunFloor.prepare(bench);
    sweeper.track(floor.cgroupTop);
    const tag = `localhost/osn-bench:${bench.image.key.slice(0, 12)}`;
    const tar = await closureTarball(bench);
    const podman = new PodmanStore(join(bench.root, "podman"), podmanRuntime(bench.cgroups));
    await podman.importTarball(tar.path, tag);
    await settleDisk();

    process.stderr.write(`warm start: ${runs} rounds…\n`);
    const variants = warmVariants(bench, floor, podman, tag, cliPath());
    const warm = await runInterleaved(variants, runs, 1, interrupt.signal);
    const firstRuns = Math.max(runs, MIN_FIRST_USE_RUNS);
    process.stderr.write(`first use: ${firstRuns} rounds…\n`);
    const builds: BuildSample[] = [];
    const firstUse = firstUseVariants(bench, tar.path, tag, sweeper, builds, prebuilt);
    const first = await runInterleaved(firstUse, firstRuns, 0, interrupt.signal);
    process.stderr.write("disk footprint…\n");
    const footprints = {
      ...(await oursFootprint(bench.app)),
      podmanStorageDelta: await podmanFootprint(podman, tag, bench.env),
    };
    const closure = await closureFacts(bench.image.closure);

    if (!variants.some((v) => v.name === ROW.cli)) warm.set(ROW.cli, { samples: [], error: "CLI not built" });
    const results = { runs, firstRuns, warm, first, builds, footprints, closure, tarMs: tar.ms };
    process.stdout.write(`${(await renderReport(bench, results)).join("\n")}\n`);
  } finally {
    await finishBench(cleanup, sweeper);
  }
}

runBench(main);
