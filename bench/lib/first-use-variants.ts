import { join } from "node:path";
import { openApp } from "../../src/app.js";
import type { Bench } from "./bench.js";
import type { CgroupSweeper } from "./cgroup-sweeper.js";
import { latencySince, spawnWatched, timeServiceRun } from "./latency.js";
import { hostBundleImage } from "./nix-fixtures.js";
import { PodmanStore, podmanRuntime } from "./podman-store.js";
import { removeTree } from "./remove-tree.js";
import { ROW } from "./rows.js";
import type { Variant } from "./run-interleaved.js";
import { settleDisk } from "./settle-disk.js";
import { COMMAND, CONFIG } from "./workload.js";

/** What one first-use sample learnt about building the image. */
export interface BuildSample {
  ensureMs: number;
  buildMs: number;
  bytes: number;
}

/**
 * The first use of a bundle never seen before, each sample on fresh state: image build and first
 * run for openshell-nix, `podman import` and first run for podman. Each of our samples adds its
 * build figures to `builds`.
 */
export function firstUseVariants(
  bench: Bench,
  tarball: string,
  tag: string,
  sweeper: CgroupSweeper,
  builds: BuildSample[],
  /** The bundle's image made by nix/bundle-image.nix, as nixos-rebuild makes it; absent: no row. */
  prebuilt?: string,
): Variant[] {
  let n = 0;
  const ours: Variant = {
    name: ROW.oursFirst,
    sample: async () => {
      // Opening the state is outside the clock: a daemon has its state open already.
      const app = await openApp({ stateDir: join(bench.root, `first-use-${n++}`), config: CONFIG });
      sweeper.track(`/openshell-nix/${app.layout.tag}`);
      try {
        const t0 = performance.now();
        const { image, built } = await app.images.ensure(bench.toplevels);
        if (!built) throw new Error("a fresh state directory found the image already built");
        builds.push({ ensureMs: performance.now() - t0, buildMs: image.buildMs, bytes: image.bytes });
        // Store paths, not `demo`: in a fresh state directory the demo bundle would first run
        // nix-build to make its GC root, which is Nix's work, as the tarball is podman's.
        return await timeServiceRun(app, { storePaths: bench.toplevels, command: COMMAND }, t0);
      } finally {
        app.close();
        await removeTree(app.layout.root);
        await settleDisk();
      }
    },
  };
  const podman: Variant = {
    name: ROW.podmanFirst,
    sample: async () => {
      const store = new PodmanStore(
        join(bench.root, `podman-first-use-${n++}`),
        podmanRuntime(bench.cgroups),
      );
      try {
        const t0 = performance.now();
        await store.importTarball(tarball, tag);
        return await latencySince(
          ROW.podmanFirst,
          t0,
          spawnWatched(store.runArgv(tag, bench.env), store.env),
        );
      } finally {
        await store.destroy();
        await settleDisk();
      }
    },
  };
  // What a NixOS host does at a bundle's first use: the image exists already (built with the
  // system), so the daemon adopts it (a link and a GC root) instead of running mkfs.
  const oursPrebuilt: Variant | undefined =
    prebuilt === undefined
      ? undefined
      : {
          name: ROW.oursPrebuilt,
          sample: async () => {
            const config = { ...CONFIG, bundles: { demo: { storePaths: bench.toplevels, image: prebuilt } } };
            const app = await openApp({ stateDir: join(bench.root, `first-use-${n++}`), config });
            sweeper.track(`/openshell-nix/${app.layout.tag}`);
            try {
              const t0 = performance.now();
              const { built } = await app.images.ensure(bench.toplevels);
              if (built) throw new Error("the prebuilt image was not adopted");
              return await timeServiceRun(app, { storePaths: bench.toplevels, command: COMMAND }, t0);
            } finally {
              app.close();
              await removeTree(app.layout.root);
              await settleDisk();
            }
          },
        };
  return oursPrebuilt ? [ours, oursPrebuilt, podman] : [ours, podman];
}

/**
 * The bench bundle's image built by nix/bundle-image.nix with the host's tools (outside the
 * clock, like nixos-rebuild), or undefined with the reason on stderr.
 */
export function nixPrebuiltImage(bench: Bench): string | undefined {
  try {
    return hostBundleImage("bench", bench.toplevels, join(bench.root, "prebuilt-image"));
  } catch (err) {
    process.stderr.write(`no prebuilt-image row: ${(err as Error).message.slice(-300)}\n`);
    return undefined;
  }
}
