import type { CgroupLayout } from "../../host/cgroups.js";

export interface CrunContext {
  /** crun's state directory (--root), private to one openshell-nix state directory. */
  root: string;
  layout: CgroupLayout;
}

/**
 * How to invoke crun on this host, as argv; pure, unit-tested.
 *
 * On a hybrid cgroup host crun 1.8 refuses to run ("cgroups in hybrid mode not supported").
 * The fix touches nothing on the host: crun runs in a private mount namespace in which the v2
 * tree at /sys/fs/cgroup/unified is unmounted, so crun sees a plain v1 layout, whose memory,
 * pids and cpu controllers enforce the limits. Every crun call goes through the same namespace
 * recipe, so create, exec, kill and delete all agree on the cgroup paths.
 */
export function crunArgv(ctx: CrunContext, args: readonly string[], recordExitTo?: string): string[] {
  const crun = ["crun", "--root", ctx.root, "--cgroup-manager=cgroupfs", ...args];
  const prelude = ctx.layout.mode === "hybrid" ? "umount -l /sys/fs/cgroup/unified || exit 125\n" : "";
  if (recordExitTo === undefined) {
    if (!prelude) return crun;
    return [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `${prelude}exec "$@"`,
      "crun",
      ...crun,
    ];
  }
  // The monitor: a shell that outlives the CLI, waits for `crun run` and writes the workload's
  // exit status atomically where the next CLI (or the daemon) will find it.
  const script = `${prelude}"$@"\nrc=$?\necho $rc > "$0.tmp" && mv "$0.tmp" "$0"\nexit $rc`;
  const sh = ["sh", "-c", script, recordExitTo, ...crun];
  return prelude ? ["unshare", "--mount", "--propagation", "private", ...sh] : sh;
}
