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
  /**
   * User-mode networking for the workload (monitor calls only): the call makes a network
   * namespace bound at `netns` inside its own mount namespace (so the binding vanishes with
   * the call and never leaks onto the host), runs slirp4netns on it, waits until the tap device
   * is configured, and stops slirp4netns when crun returns. The OCI config joins `netns`.
   */
  slirp?: { netns: string; log: string };
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
  const slirp = options.recordExitTo === undefined ? undefined : options.slirp;
  // One umount for them all: a shell loop over mountinfo costs more than crun's own start.
  const prelude = hybrid
    ? [HIDE_V2, ...(drop.length > 0 ? [`umount -l ${drop.map(shellQuote).join(" ")} 2>/dev/null`] : [])]
    : [];
  if (slirp) prelude.push(...slirpPrelude(slirp.netns, slirp.log));
  const unshare = hybrid || slirp ? ["unshare", "--mount", "--propagation", "private"] : [];
  if (options.recordExitTo === undefined) {
    if (!hybrid) return crun;
    return [...unshare, "sh", "-c", [...prelude, 'exec "$@"'].join("\n"), "crun", ...crun];
  }
  const script = [
    ...prelude,
    '"$@"',
    "rc=$?",
    ...(slirp ? ['kill "$slirp" 2>/dev/null'] : []),
    'echo $rc > "$0.tmp" && mv "$0.tmp" "$0"',
    "exit $rc",
  ].join("\n");
  return [...unshare, "sh", "-c", script, options.recordExitTo, ...crun];
}

/**
 * The shell lines that give a monitor call its network: a fresh netns bound at `netns`,
 * slirp4netns on it (10.0.2.100 in the sandbox, the host's loopback at 10.0.2.2), and a wait
 * for slirp4netns's ready signal through a fifo. Exit status 125 marks our failure.
 */
function slirpPrelude(netns: string, log: string): string[] {
  const ns = shellQuote(netns);
  const ready = shellQuote(`${netns}.ready`);
  return [
    `rm -f ${ready} && : > ${ns} && unshare --net=${ns} true || exit 125`,
    `mkfifo ${ready} || exit 125`,
    `slirp4netns --configure --mtu=65520 --ready-fd=3 --netns-type=path ${ns} tap0 >${shellQuote(log)} 2>&1 3>${ready} &`,
    "slirp=$!",
    `read -r _ < ${ready}; rm -f ${ready}`,
    'kill -0 "$slirp" 2>/dev/null || { echo "slirp4netns failed: $(tail -n 3 ' +
      `${shellQuote(log)})" >&2; exit 125; }`,
  ];
}
