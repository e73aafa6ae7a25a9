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
   * The call lives as long as a workload (run, exec). On a hybrid host it then runs in a mount
   * namespace of its own, which would keep a copy of every bundle image mounted on the host,
   * and so keep their loop devices, for as long as it lives; it drops those copies, except
   * this one (the image its overlay needs), right away.
   */
  longLived?: { keepMount?: string };
}

const HIDE_V2 = "umount -l /sys/fs/cgroup/unified || exit 125";

/** Lazily unmount every erofs mount in this (private) namespace but "$KEEP". */
const DROP_IMAGE_COPIES = [
  "while read -r _ _ _ _ mp rest; do",
  '  case "$rest" in *" - erofs "*) [ "$mp" = "$KEEP" ] || umount -l "$mp" 2>/dev/null;; esac',
  "done < /proc/self/mountinfo",
].join("\n");

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
  const prelude = hybrid ? [HIDE_V2, ...(options.longLived ? [DROP_IMAGE_COPIES] : [])] : [];
  const env = hybrid && options.longLived ? ["env", `KEEP=${options.longLived.keepMount ?? ""}`] : [];
  const unshare = hybrid ? ["unshare", "--mount", "--propagation", "private"] : [];
  if (options.recordExitTo === undefined) {
    if (!hybrid) return crun;
    return [...env, ...unshare, "sh", "-c", [...prelude, 'exec "$@"'].join("\n"), "crun", ...crun];
  }
  const script = [...prelude, '"$@"', "rc=$?", 'echo $rc > "$0.tmp" && mv "$0.tmp" "$0"', "exit $rc"].join(
    "\n",
  );
  return [...env, ...unshare, "sh", "-c", script, options.recordExitTo, ...crun];
}
