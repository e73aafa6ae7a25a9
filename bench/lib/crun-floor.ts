import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CrunContext, crunArgv } from "../../src/drivers/container/crun-command.js";
import { buildOciConfig } from "../../src/drivers/container/oci-spec.js";
import { writeRootfs } from "../../src/drivers/container/rootfs.js";
import { mountErofs, unmount } from "../../src/host/mounts.js";
import { runCommandStatus } from "../../src/process/run-command.js";
import { resolveLimits } from "../../src/sandbox/sandbox-service.js";
import { StateLayout } from "../../src/state/layout.js";
import { type Bench, findTool } from "./bench.js";
import { timeSpawn } from "./latency.js";
import { ROW } from "./rows.js";
import { COMMAND } from "./workload.js";

/**
 * What a runtime that had everything cached would still do per sandbox: a fresh upper/work pair
 * and config.json (written before the clock starts), then `crun run`, invoked exactly as
 * openshell-nix invokes it (on a hybrid-cgroup host crun runs in a private mount namespace).
 */
export class CrunFloor {
  private readonly lower: string;
  private readonly rootfs: string;
  private readonly home: string;
  private readonly crun: CrunContext;
  private readonly cgroupParent: string;
  private runs = 0;

  private constructor(
    private readonly dir: string,
    private readonly bench: Bench,
  ) {
    this.lower = join(dir, "lower");
    this.rootfs = join(dir, "rootfs");
    this.home = join(dir, "home");
    this.crun = { root: join(dir, "crun-state"), layout: bench.cgroups };
    // Same depth and naming as the driver's cgroups, under a tag of our own.
    this.cgroupParent = `/openshell-nix/${new StateLayout(dir).tag}`;
  }

  get cgroupTop(): string {
    return this.cgroupParent;
  }

  static async prepare(bench: Bench): Promise<CrunFloor> {
    const floor = new CrunFloor(join(bench.root, "floor"), bench);
    for (const d of [floor.lower, floor.home, floor.crun.root]) mkdirSync(d, { recursive: true });
    // Our own loop mount of the image: the service's shared mount comes and goes with its sandboxes.
    await mountErofs(bench.image.path, floor.lower);
    bench.cleanup.push("floor lower mount", () => unmount(floor.lower));
    const tops = bench.toplevels;
    writeRootfs(floor.rootfs, {
      hostname: "floor",
      shell: findTool(tops, "sh"),
      envTool: findTool(tops, "env"),
    });
    return floor;
  }

  async sample(): Promise<number> {
    const id = `floor-${this.runs++}`;
    const run = join(this.dir, id);
    this.writeBundle(id, run);
    const argv = crunArgv(this.crun, ["run", "--bundle", run, "--pid-file", join(run, "pid"), id]);
    try {
      return await timeSpawn(ROW.floor, argv);
    } catch (err) {
      await runCommandStatus(crunArgv(this.crun, ["delete", "--force", id]));
      throw err;
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  }

  private writeBundle(id: string, run: string): void {
    const upperDir = join(run, "upper");
    const workDir = join(run, "work");
    for (const d of [upperDir, workDir]) mkdirSync(d, { recursive: true });
    const config = buildOciConfig({
      process: { args: COMMAND, env: this.bench.env, cwd: "/root" },
      hostname: id,
      rootfs: this.rootfs,
      lowerDir: join(this.lower, "nix", "store"),
      upperDir,
      workDir,
      homeDir: this.home,
      cgroupsPath: `${this.cgroupParent}/${id}`,
      limits: resolveLimits(this.bench.app.config.limits),
    });
    writeFileSync(join(run, "config.json"), JSON.stringify(config));
  }
}
