import { join } from "node:path";
import { runCommand } from "../../src/process/run-command.js";
import type { Bench } from "./bench.js";

/** A tarball of the closure with absolute store paths, as `podman import` wants a root filesystem. */
export async function closureTarball(bench: Bench): Promise<{ path: string; ms: number }> {
  const path = join(bench.root, "closure.tar");
  const t0 = performance.now();
  await runCommand(["tar", "-C", "/", "-cf", path, ...bench.image.closure.map((p) => p.slice(1))]);
  return { path, ms: performance.now() - t0 };
}
