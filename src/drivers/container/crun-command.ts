import type { CgroupLayout } from "../../host/cgroups.js";

export interface CrunContext {
  /** crun's state directory (--root), private to one openshell-nix state directory. */
  root: string;
  layout: CgroupLayout;
}

export interface CrunCallOptions {
  /**
   * Run as a monitor: a shell waits for crun and writes its exit status to this file
   * atomically, where the next CLI (or the daemon) finds it.
   */
  recordExitTo?: string;
  /**
   * Mounts to drop from the call's namespace. On a hybrid host every crun call runs in a mount
   * namespace of its own, which starts with a copy of every host mount; a long-lived call (run,
   * exec) holding copies of other bundle images' mounts would pin those images, and their loop
   * devices, for as long as its workload runs. Ignored where crun needs no namespace.
   */
  dropMounts?: readonly string[];
}

const HIDE_V2 = "umount -l /sys/fs/cgroup/unified || exit 125";

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
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
export function crunArgv(ctx: CrunContext, args: readonly string[], options: CrunCallOptions = {}): string[] {
  const crun = ["crun", "--root", ctx.root, "--cgroup-manager=cgroupfs", ...args];
  const hybrid = ctx.layout.mode === "hybrid";
  const drop = options.dropMounts ?? [];
  // One umount for them all: a shell loop over mountinfo costs more than crun's own start.
  const prelude = hybrid
    ? [HIDE_V2, ...(drop.length > 0 ? [`umount -l ${drop.map(shellQuote).join(" ")} 2>/dev/null`] : [])]
    : [];
  const unshare = hybrid ? ["unshare", "--mount", "--propagation", "private"] : [];
  if (options.recordExitTo === undefined) {
    if (!hybrid) return crun;
    return [...unshare, "sh", "-c", [...prelude, 'exec "$@"'].join("\n"), "crun", ...crun];
  }
  const script = [...prelude, '"$@"', "rc=$?", 'echo $rc > "$0.tmp" && mv "$0.tmp" "$0"', "exit $rc"].join(
    "\n",
  );
  return [...unshare, "sh", "-c", script, options.recordExitTo, ...crun];
}
