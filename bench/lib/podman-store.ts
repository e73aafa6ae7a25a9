import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CgroupLayout } from "../../src/host/cgroups.js";
import { runCommand } from "../../src/process/run-command.js";
import { removeTree } from "./remove-tree.js";
import { COMMAND } from "./workload.js";

/**
 * One podman storage, all of it under `dir`. The flags are what this host needs: cgroupfs (no
 * systemd session), no events journal, low explicit ulimits (root here lacks CAP_SYS_RESOURCE and
 * the default nofile of 1048576 fails), no network. On a hybrid-cgroup host the runtime is runc
 * (crun 1.8 refuses that layout); elsewhere crun, podman's own default.
 */
export class PodmanStore {
  private readonly runtimeWrapper: string;
  private readonly graphRoot: string;
  private readonly runRoot: string;
  private readonly tmp: string;

  constructor(
    readonly dir: string,
    runtime: "crun" | "runc",
  ) {
    this.graphRoot = join(dir, "root");
    this.runRoot = join(dir, "run");
    this.tmp = join(dir, "tmp");
    for (const d of [join(dir, "bin"), this.tmp]) mkdirSync(d, { recursive: true });
    // A wrapper, not --runtime-flag: conmon's exit command (`podman container cleanup`) does
    // not pass runtime flags on, and the runtime's state must stay out of /run.
    this.runtimeWrapper = join(dir, "bin", runtime);
    const script = `#!/bin/sh\nexec /usr/bin/${runtime} --root '${join(dir, "runtime-state")}' "$@"\n`;
    writeFileSync(this.runtimeWrapper, script, { mode: 0o755 });
  }

  get storageDirs(): string[] {
    return [this.graphRoot, this.runRoot];
  }

  /** TMPDIR too: image import stages its big files there, not under --tmpdir. */
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, TMPDIR: this.tmp };
  }

  /**
   * `podman import` keeps a blob-info cache in /var/lib/containers whatever --root says, so it
   * runs in a private mount namespace where /var/lib is an empty tmpfs. (run, create and rm
   * write nothing outside the storage.)
   */
  async importTarball(tarball: string, tag: string): Promise<void> {
    const hideVarLib = ["unshare", "--mount", "--propagation", "private", "sh", "-c"];
    const script = 'mount -t tmpfs bench-varlib /var/lib && exec "$@"';
    const argv = [...hideVarLib, script, "sh", ...this.podman(["import", "--quiet", tarball, tag])];
    await runCommand(argv, { env: this.env });
  }

  runArgv(tag: string, env: Record<string, string>): string[] {
    return this.podman(["run", "--rm", ...this.containerFlags(env), tag, ...COMMAND]);
  }

  async create(tag: string, env: Record<string, string>): Promise<string> {
    const r = await runCommand(this.podman(["create", ...this.containerFlags(env), tag, ...COMMAND]), {
      env: this.env,
    });
    return r.stdout.trim();
  }

  async removeContainer(id: string): Promise<void> {
    await runCommand(this.podman(["rm", "--force", id]), { env: this.env });
  }

  async destroy(): Promise<void> {
    await removeTree(this.dir);
  }

  private podman(args: string[]): string[] {
    return [
      "podman",
      ...["--root", this.graphRoot, "--runroot", this.runRoot, "--tmpdir", this.tmp],
      ...["--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none"],
      ...["--runtime", this.runtimeWrapper],
      ...args,
    ];
  }

  private containerFlags(env: Record<string, string>): string[] {
    const flags = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
    for (const [k, v] of Object.entries(env)) flags.push("--env", `${k}=${v}`);
    return flags;
  }
}

/** The runtime PodmanStore should use on this host: crun 1.8 refuses the hybrid cgroup layout. */
export function podmanRuntime(layout: CgroupLayout): "crun" | "runc" {
  return layout.mode === "hybrid" ? "runc" : "crun";
}
