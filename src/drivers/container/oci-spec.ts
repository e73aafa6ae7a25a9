import type { ResourceLimits } from "../../sandbox/types.js";
import { type OciSeccomp, type SeccompProfileKind, seccompProfile } from "./seccomp.js";

/**
 * The capabilities a container sandbox keeps: what a root workload needs to manage its own files
 * and processes. Gone, among others: SYS_ADMIN (mount, remount a read-only mount rw), MKNOD
 * (device nodes), NET_ADMIN/NET_RAW, SYS_MODULE, SYS_RAWIO, SYS_PTRACE, SYS_TIME, SYS_BOOT,
 * DAC_READ_SEARCH (open_by_handle_at), SYS_RESOURCE, AUDIT_CONTROL, BPF, PERFMON.
 */
export const SANDBOX_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_AUDIT_WRITE",
  "CAP_SETFCAP",
];

/**
 * Added for the OpenShell supervisor, as upstream's Docker driver adds them: it builds a network
 * namespace and veth pair for the agent (SYS_ADMIN, NET_ADMIN), reads its processes
 * (SYS_PTRACE) and the kernel log (SYSLOG). See docs/security.md for what this costs.
 */
export const SUPERVISOR_EXTRA_CAPABILITIES: readonly string[] = [
  "CAP_SYS_ADMIN",
  "CAP_NET_ADMIN",
  "CAP_SYS_PTRACE",
  "CAP_SYSLOG",
];

export interface OciProcessInput {
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** "supervisor": the main process of a compute-driver sandbox (SUPERVISOR_EXTRA_CAPABILITIES). */
  profile?: SeccompProfileKind;
}

export interface OciConfigInput {
  process: OciProcessInput;
  hostname: string;
  rootfs: string;
  /** The shared, read-only image tree mounted as the overlay's lower layer. */
  lowerDir: string;
  upperDir: string;
  workDir: string;
  /** Persistent home directory, bind-mounted at /root. */
  homeDir: string;
  /**
   * The OpenShell supervisor's persistent workdir, bind-mounted at /sandbox, with a tmpfs /run
   * for its sockets; only for the compute driver's sandboxes (two mounts fewer for the rest).
   */
  workspaceDir?: string;
  /** A network namespace to join (slirp networking); absent: a private one with loopback only. */
  netnsPath?: string;
  cgroupsPath: string;
  limits: ResourceLimits;
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: Record<"bounding" | "effective" | "permitted", string[]>;
  noNewPrivileges: boolean;
}

export interface OciConfig {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: {
    namespaces: { type: string; path?: string }[];
    cgroupsPath: string;
    resources: Record<string, unknown>;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp: OciSeccomp;
  };
}

/** The process part, shared by the sandbox's main process and `exec`. */
export function ociProcess(input: OciProcessInput): OciProcess {
  const caps = [
    ...SANDBOX_CAPABILITIES,
    ...(input.profile === "supervisor" ? SUPERVISOR_EXTRA_CAPABILITIES : []),
  ];
  return {
    terminal: false,
    user: { uid: 0, gid: 0 },
    args: input.args,
    env: Object.entries(input.env).map(([k, v]) => `${k}=${v}`),
    cwd: input.cwd,
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    noNewPrivileges: true,
  };
}

/** CFS period used to express fractional CPU limits. */
const CPU_PERIOD_US = 100_000;

export function ociResources(limits: ResourceLimits): Record<string, unknown> {
  const resources: Record<string, unknown> = {
    // Deny every device node, then allow the harmless ones crun creates in /dev.
    devices: [
      { allow: false, access: "rwm" },
      ...[
        [1, 3],
        [1, 5],
        [1, 7],
        [1, 8],
        [1, 9],
        [5, 0],
        [5, 2],
      ].map(([major, minor]) => ({ allow: true, type: "c", major, minor, access: "rwm" })),
      { allow: true, type: "c", major: 136, access: "rwm" },
    ],
  };
  // swap = limit: memory plus swap may not exceed the limit, so it holds on hosts with swap too.
  if (limits.memoryBytes !== undefined)
    resources.memory = { limit: limits.memoryBytes, swap: limits.memoryBytes };
  if (limits.pids !== undefined) resources.pids = { limit: limits.pids };
  if (limits.cpus !== undefined) {
    resources.cpu = { quota: Math.round(limits.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US };
  }
  return resources;
}

/** The OCI runtime config (config.json) of a container sandbox; pure, unit-tested. */
export function buildOciConfig(input: OciConfigInput): OciConfig {
  return {
    ociVersion: "1.0.2",
    process: ociProcess(input.process),
    root: { path: input.rootfs, readonly: true },
    hostname: input.hostname,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
      {
        // The writable store: the shared image below, this sandbox's own directories on top.
        destination: "/nix/store",
        type: "overlay",
        source: "overlay",
        options: [
          "nosuid",
          "nodev",
          `lowerdir=${input.lowerDir}`,
          `upperdir=${input.upperDir}`,
          `workdir=${input.workDir}`,
        ],
      },
      {
        destination: "/root",
        type: "bind",
        source: input.homeDir,
        options: ["rbind", "rw", "nosuid", "nodev"],
      },
      ...(input.workspaceDir
        ? [
            // Sockets and pid files (the supervisor's /run/openshell): the root is read-only.
            { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"] },
            {
              destination: "/sandbox",
              type: "bind",
              source: input.workspaceDir,
              options: ["rbind", "rw", "nosuid", "nodev"],
            },
          ]
        : []),
    ],
    linux: {
      // No user namespace yet: see docs/security.md for why root inside is still not host root.
      namespaces: [
        { type: "pid" },
        { type: "mount" },
        { type: "ipc" },
        { type: "uts" },
        input.netnsPath ? { type: "network", path: input.netnsPath } : { type: "network" },
        // With SYS_ADMIN, a cgroup v1 hierarchy mounted from the host's cgroup namespace would
        // offer release_agent, a way out; in a cgroup namespace of its own it does not.
        ...(input.process.profile === "supervisor" ? [{ type: "cgroup" }] : []),
      ],
      cgroupsPath: input.cgroupsPath,
      resources: ociResources(input.limits),
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      seccomp: seccompProfile(input.process.profile ?? "default"),
    },
  };
}
