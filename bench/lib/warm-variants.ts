import type { App } from "../../src/app.js";
import { type Bench, findTool } from "./bench.js";
import type { CrunFloor } from "./crun-floor.js";
import { timeServiceRun, timeSpawn } from "./latency.js";
import type { PodmanStore } from "./podman-store.js";
import { ROW } from "./rows.js";
import type { Variant } from "./run-interleaved.js";
import { COMMAND } from "./workload.js";

function hostPythonVariant(bench: Bench): Variant {
  const python = findTool(bench.toplevels, "python3");
  return {
    name: ROW.host,
    sample: () =>
      python
        ? timeSpawn(ROW.host, [python, ...COMMAND.slice(1)], bench.env)
        : Promise.reject(new Error("the bundle has no bin/python3")),
  };
}

/** `run` while another sandbox of the bundle exists, so the shared lower mount is already there. */
function heldMountVariant(app: App): Variant {
  return {
    name: ROW.apiHeld,
    sample: async () => {
      const held = await app.service.create({ bundle: "demo", command: COMMAND });
      try {
        return await timeServiceRun(app, { bundle: "demo", command: COMMAND });
      } finally {
        await app.service.remove(held.name);
      }
    },
  };
}

/** The CLI at `cli` on the same state directory (so the image is warm); undefined until it is built. */
function cliVariant(app: App, cli: string | undefined): Variant | undefined {
  if (!cli) return undefined;
  const argv = [process.execPath, cli, "--state-dir", app.layout.root, "run", "--bundle", "demo", "--"];
  return { name: ROW.cli, sample: () => timeSpawn(ROW.cli, [...argv, ...COMMAND]) };
}

/**
 * Every way of starting the workload once its image exists, from no sandbox at all to podman.
 * `cliPath` is the built CLI, if there is one; without it the CLI variant is left out.
 */
export function warmVariants(
  bench: Bench,
  floor: CrunFloor,
  podman: PodmanStore,
  tag: string,
  cliPath: string | undefined,
): Variant[] {
  const { app } = bench;
  const cli = cliVariant(app, cliPath);
  return [
    hostPythonVariant(bench),
    { name: ROW.floor, sample: () => floor.sample() },
    { name: ROW.api, sample: () => timeServiceRun(app, { bundle: "demo", command: COMMAND }) },
    heldMountVariant(app),
    ...(cli ? [cli] : []),
    { name: ROW.podman, sample: () => timeSpawn(ROW.podman, podman.runArgv(tag, bench.env), podman.env) },
  ];
}
